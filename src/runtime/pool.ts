// The engine's side of user code: worker threads that run it, with limits. Workflow code runs
// in workflow threads (lanes; a run stays resident in its lane between activations, and a second
// lane starts only when the first is stalled behind a long step); activities run in a
// small pool of activity threads, one call per thread at a time. Each thread has a heap limit
// (`resourceLimits`); a workflow activation that makes no progress for the activation bound,
// or an activity that outlives its time bound, has its thread terminated. The engine thread
// never runs user code, so a looping or memory-hungry run costs only its own thread.
//
// Failure behaviour: nothing here throws for anything user code does. A limit comes back as a
// `lost` activation (the thread died: the caller decides, see Driver) or as a failed activity
// outcome with `code: resource_exhausted` and the limit. Threads are respawned on demand.
import { readFileSync } from 'node:fs';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { AionError } from '../errors.js';
import { applyJit } from '../jit.cjs';

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux that Node supports. */
const CLOCK_TICKS = 100;
import type { Activation, ErrorInfo, WorkflowEvent } from './history.js';
import type { ActivityOutcome, RunInit } from './host.js';

export type ToWorker =
  | { t: 'version'; version: string; names: string[] }
  | { t: 'drop-version'; version: string }
  | { t: 'drop-run'; runId: string }
  | { t: 'activate'; id: number; runId: string; init: RunInit | undefined; events: WorkflowEvent[] }
  | { t: 'verify'; id: number; version: string; entry: string; entryFunction: string; activities: string[] }
  | { t: 'activity'; id: number; version: string; entry: string; name: string; input: unknown };

export type FromWorker =
  | { t: 'reply'; id: number; activation?: Activation; problem?: string; outcome?: ActivityOutcome; failure?: string }
  | { t: 'log'; id: number; level: string; text: string }
  /** The worker waits (blocked) for a module's source: answered on its source port. */
  | { t: 'need'; version: string; name: string };

export interface PoolLimits {
  /** Heap of each workflow thread (all runs resident in it together), MiB. */
  workflowMemoryMb: number;
  /** Heap of each activity thread, MiB. */
  activityMemoryMb: number;
  /** A workflow step (start, or applying one event) that runs longer fails its run. */
  activationTimeoutMs: number;
  /** Evaluating an entry module at load. */
  verifyTimeoutMs: number;
  /** Activity threads at most (calls beyond wait their turn). */
  activityThreads: number;
  /** Workflow threads at most: more start only while every one is stalled behind a long step. */
  workflowThreads: number;
}

const positive = (text: string | undefined, fallback: number): number => {
  const n = text === undefined ? NaN : Number(text);
  return Number.isFinite(n) && n > 0 ? n : fallback;
};

/** The limits, from `AION_WORKFLOW_MEMORY_MB`, `AION_ACTIVITY_MEMORY_MB`, `AION_ACTIVITY_THREADS`, `AION_WORKFLOW_THREADS`. */
export function defaultLimits(env: NodeJS.ProcessEnv = process.env): PoolLimits {
  return {
    workflowMemoryMb: positive(env.AION_WORKFLOW_MEMORY_MB, 1024),
    activityMemoryMb: positive(env.AION_ACTIVITY_MEMORY_MB, 256),
    activationTimeoutMs: 1000,
    verifyTimeoutMs: 2000,
    activityThreads: Math.floor(positive(env.AION_ACTIVITY_THREADS, 4)),
    workflowThreads: Math.floor(positive(env.AION_WORKFLOW_THREADS, 4)),
  };
}

type Reply = Extract<FromWorker, { t: 'reply' }>;

/** Why a thread died: its heap limit, its owner's termination (a time bound), or a crash. */
export type Death = 'memory' | 'time' | 'crash';

const WORKER_URL = new URL('./worker.js', import.meta.url);

class Thread {
  readonly worker: Worker;
  readonly versions = new Set<string>();
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; onLog?: (level: string, text: string) => void }>();
  private nextId = 1;
  dead: Death | undefined;
  private terminating: Death | undefined;
  /** [0]: steps taken (the worker counts them); [1]: the worker's thread id, where known. */
  readonly progress = new Int32Array(new SharedArrayBuffer(8));

  /**
   * The CPU time (ms) the thread has used, from /proc on Linux; undefined elsewhere. A step's
   * time bound counts this, so a step starved of CPU by other threads is not blamed for it.
   */
  cpuMs(): number | undefined {
    const tid = Atomics.load(this.progress, 1);
    if (tid <= 0) return undefined;
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {
      return undefined;
    }
  }
  readonly exited: Promise<void>;
  /** Resolves once the thread runs (or has died). */
  readonly ready: Promise<void>;
  onDeath: ((why: Death) => void) | undefined;

  /** Where a blocked worker's source requests are answered (a port and a flag it waits on). */
  private readonly sourcePort: MessagePort;
  private readonly sourceFlag = new Int32Array(new SharedArrayBuffer(4));

  constructor(mode: 'workflow' | 'activity', memoryMb: number, sourceOf: (version: string, name: string) => string | undefined) {
    const channel = new MessageChannel();
    this.sourcePort = channel.port1;
    this.worker = new Worker(WORKER_URL, {
      workerData: { mode, progress: this.progress.buffer, sourcePort: channel.port2, sourceFlag: this.sourceFlag.buffer },
      transferList: [channel.port2],
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(64, Math.floor(memoryMb / 8))) },
      stdout: false,
      stderr: false,
    });
    this.worker.unref();
    this.ready = new Promise((resolve) => {
      this.worker.once('online', () => resolve());
      this.worker.once('exit', () => resolve());
    });
    // Messages travel as JSON text both ways: cloning one string costs far less than cloning
    // the object graph, and only JSON-able values cross anyway.
    this.worker.on('message', (text: string) => {
      const m = JSON.parse(text) as FromWorker;
      if (m.t === 'need') {
        let source: string | undefined;
        try {
          source = sourceOf(m.version, m.name);
        } catch {
          source = undefined;
        }
        this.sourcePort.postMessage({ source });
        Atomics.store(this.sourceFlag, 0, 1);
        Atomics.notify(this.sourceFlag, 0);
        return;
      }
      const entry = this.pending.get(m.id);
      if (!entry) return;
      if (m.t === 'log') {
        entry.onLog?.(m.level, m.text);
        return;
      }
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      entry.resolve(m);
    });
    let oom = false;
    this.worker.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') oom = true;
    });
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', () => {
        // A heap overflow is what it is, even when a time bound fired while the heap thrashed.
        this.dead = oom ? 'memory' : (this.terminating ?? 'crash');
        this.sourcePort.close();
        const why = this.dead;
        for (const entry of this.pending.values()) entry.resolve({ t: 'reply', id: -1, failure: `thread died: ${why}` });
        this.pending.clear();
        this.onDeath?.(why);
        resolve();
      });
    });
  }

  get busy(): number {
    return this.pending.size;
  }

  post(message: ToWorker): void {
    if (this.dead === undefined) this.worker.postMessage(JSON.stringify(message));
  }

  request(make: (id: number) => ToWorker, onLog?: (level: string, text: string) => void): Promise<Reply> {
    if (this.dead !== undefined) return Promise.resolve({ t: 'reply', id: -1, failure: `thread died: ${this.dead}` });
    const id = this.nextId++;
    return new Promise<Reply>((resolve) => {
      this.pending.set(id, { resolve, onLog });
      this.worker.ref();
      this.worker.postMessage(JSON.stringify(make(id)));
    });
  }

  /** Terminates the thread; its pending requests resolve as failures naming `why`. */
  kill(why: Death): Promise<void> {
    if (this.dead === undefined && this.terminating === undefined) {
      this.terminating = why;
      void this.worker.terminate();
    }
    return this.exited;
  }
}

/** An activation's result: what the code did, or the death of its thread. */
export type ActivationResult = { activation: Activation } | { lost: Death };

/** A registered version's modules: its names, and each source by name (undefined when unknown). */
export interface SourcesOf {
  names(version: string): string[];
  source(version: string, name: string): string | undefined;
}

/** One version's module names, and each one's source when a thread asks for it (undefined: unknown). */
export interface VersionTexts {
  names: string[];
  source(name: string): string | undefined;
}

/**
 * One workflow thread and the runs resident in it, with its own queue: requests to one lane
 * run one at a time (a thread runs one step at a time anyway), lanes run side by side.
 */
class Lane {
  thread: Thread | undefined;
  readonly runs = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Requests queued or running. */
  waiting = 0;
  /** When the request running now started (undefined: idle). */
  busySince: number | undefined;

  constructor(
    private readonly memoryMb: number,
    private readonly sourceOf: (version: string, name: string) => string | undefined,
  ) {}

  /** The lane's live thread (a fresh one after a death, with no run resident). */
  live(): Thread {
    if (this.thread === undefined || this.thread.dead !== undefined) {
      const thread = new Thread('workflow', this.memoryMb, this.sourceOf);
      thread.onDeath = () => {
        if (this.thread === thread) {
          this.thread = undefined;
          this.runs.clear();
        }
      };
      this.thread = thread;
      this.runs.clear();
    }
    return this.thread;
  }

  serial<T>(fn: () => Promise<T>): Promise<T> {
    this.waiting++;
    const run = async () => {
      this.busySince = Date.now();
      try {
        return await fn();
      } finally {
        this.busySince = undefined;
        this.waiting--;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

type Watch =
  | { kind: 'deadline'; thread: Thread; boundMs: number; at: number }
  | { kind: 'progress'; thread: Thread; boundMs: number; growth: number; givesWay: boolean; last: number; since: number | undefined; sinceWall: number; rss: number; extensions: number };

/**
 * One timer for every request in flight (a timer per request cost more than a quick step):
 * it ticks at a quarter of the smallest progress bound (a twentieth of a deadline) while
 * anything is watched, and stops at the first tick that finds nothing. Kills a thread that
 * outlives its watch; never throws.
 */
class Watchdog {
  private readonly watches = new Set<Watch>();
  private timer: NodeJS.Timeout | undefined;
  private tickMs = Infinity;

  /** Kills `thread` ('time') once `boundMs` of wall time have passed. */
  deadline(thread: Thread, boundMs: number): Watch {
    return this.add({ kind: 'deadline', thread, boundMs, at: Date.now() + boundMs }, Math.max(5, Math.floor(boundMs / 20)));
  }

  /**
   * Kills `thread` ('time') when it makes no step for `boundMs` of its CPU time where that can
   * be read (else wall time), with a wall-time backstop of three bounds. A step filling its heap
   * may be slow to die of it (the collector thrashes near the limit): with `givesWay` (a workflow
   * step), once the process has grown by `growth` bytes, the step gets one more bound of each,
   * so a heap overflow is reported as one. A verification, refused either way, gets none.
   */
  progress(thread: Thread, boundMs: number, growth: number, givesWay: boolean): Watch {
    // Nothing is read when the step is quick (most are): the clocks start at the first tick
    // that sees no progress.
    return this.add({ kind: 'progress', thread, boundMs, growth, givesWay, last: Atomics.load(thread.progress, 0), since: undefined, sinceWall: 0, rss: 0, extensions: 0 }, Math.max(5, Math.floor(boundMs / 4)));
  }

  remove(watch: Watch): void {
    this.watches.delete(watch);
  }

  private add(watch: Watch, tickMs: number): Watch {
    this.watches.add(watch);
    if (this.timer === undefined || tickMs < this.tickMs) {
      if (this.timer !== undefined) clearInterval(this.timer);
      this.tickMs = tickMs;
      this.timer = setInterval(() => this.check(), tickMs);
      this.timer.unref();
    }
    return watch;
  }

  private check(): void {
    if (this.watches.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.tickMs = Infinity;
      return;
    }
    for (const w of this.watches) {
      if (w.kind === 'deadline') {
        if (Date.now() >= w.at) this.expire(w);
        continue;
      }
      const clock = () => w.thread.cpuMs() ?? Date.now();
      const now = Atomics.load(w.thread.progress, 0);
      if (now !== w.last || w.since === undefined) {
        w.last = now;
        w.since = clock();
        w.sinceWall = Date.now();
        w.rss = process.memoryUsage.rss();
      } else if (Date.now() - w.sinceWall >= 3 * w.boundMs || clock() - w.since >= w.boundMs) {
        // The bound on CPU time, or the backstop: three bounds of wall time whatever the CPU
        // clock says (a collector working on other threads, a thread starved of CPU). For a
        // workflow step, both give way once to a heap that is filling up, so that a heap
        // overflow is reported as one (under load a filling heap outlasts three bounds).
        const grown = process.memoryUsage.rss() - w.rss;
        if (w.givesWay && grown > w.growth && w.extensions++ < 1) {
          w.since = clock();
          w.sinceWall = Date.now();
          w.rss += grown;
          continue;
        }
        this.expire(w);
      }
    }
  }

  private expire(w: Watch): void {
    this.watches.delete(w);
    void w.thread.kill('time');
  }
}

/** A lane whose request has run this long counts as stalled: new runs go to another lane. */
const STALLED_MS = 50;

export class CodePool {
  /** Workflow threads: a run stays in its lane while resident; new ones go to a free lane. */
  private readonly lanes: Lane[] = [];
  private readonly home = new Map<string, Lane>();
  private readonly idle: Thread[] = [];
  private readonly all = new Set<Thread>();
  private readonly waiting: Array<(thread: Thread) => void> = [];
  private readonly isolated = new Set<Thread>();
  private readonly watchdog = new Watchdog();
  private closed = false;

  /** Fails `usage` when AION_JIT names no mode (see src/jit.cts), before any thread starts. */
  constructor(
    readonly limits: PoolLimits,
    private readonly sources: SourcesOf,
  ) {
    const jit = applyJit();
    if ('problem' in jit) throw new AionError('usage', jit.problem, { hint: 'unset it, or set it to baseline or optimizing' });
  }

  isResident(runId: string): boolean {
    const lane = this.home.get(runId);
    return lane !== undefined && lane.runs.has(runId);
  }

  /** Activations and verifications queued or running in workflow threads. */
  get inFlight(): number {
    let n = 0;
    for (const lane of this.lanes) n += lane.waiting;
    return n;
  }

  get residentCount(): number {
    let n = 0;
    for (const lane of this.lanes) n += lane.runs.size;
    return n;
  }

  /** Drops a run's slot from its workflow thread (eviction, or its end). Never throws. */
  dropRun(runId: string): void {
    const lane = this.home.get(runId);
    this.home.delete(runId);
    if (lane === undefined || !lane.runs.delete(runId)) return;
    lane.thread?.post({ t: 'drop-run', runId });
  }

  /** Forgets a version in every thread (after an unload). Never throws. */
  dropVersion(version: string): void {
    for (const thread of [...this.lanes.map((l) => l.thread), ...this.all]) {
      if (thread?.versions.delete(version)) thread.post({ t: 'drop-version', version });
    }
  }

  /**
   * The lane of a run: its own while it is resident; else an idle lane (the one with the fewest
   * runs), or a new lane while there are fewer than the limit and every lane is stalled behind a
   * long step, or the least busy one. So one run's long (or endless) step delays only the runs
   * resident in its lane.
   */
  private laneFor(runId: string | undefined): Lane {
    if (runId !== undefined) {
      const lane = this.home.get(runId);
      if (lane !== undefined && lane.runs.has(runId)) return lane;
    }
    const now = Date.now();
    const free = this.lanes.filter((l) => l.waiting === 0).sort((a, b) => a.runs.size - b.runs.size)[0];
    if (free) return free;
    const unstalled = this.lanes.filter((l) => l.busySince === undefined || now - l.busySince < STALLED_MS);
    if (this.lanes.length === 0 || (unstalled.length === 0 && this.lanes.length < this.limits.workflowThreads)) {
      const lane = new Lane(this.limits.workflowMemoryMb, this.sourceOf);
      this.lanes.push(lane);
      return lane;
    }
    return (unstalled.length > 0 ? unstalled : this.lanes).sort((a, b) => a.waiting - b.waiting)[0]!;
  }

  /** Module sources by version: scratch versions of verifications first, then the registry. */
  private readonly sourceOf = (version: string, name: string): string | undefined => {
    const scratch = this.scratch.get(version);
    return scratch ? scratch.source(name) : this.sources.source(version, name);
  };
  /** Versions being verified, by scratch name: their sources are read only when a thread asks. */
  private readonly scratch = new Map<string, VersionTexts>();

  /** Tells a thread a version's module names; it asks for each source on first require. */
  private async withVersion(thread: Thread, version: string): Promise<void> {
    if (thread.versions.has(version)) return;
    thread.post({ t: 'version', version, names: this.sources.names(version) });
    thread.versions.add(version);
  }

  /**
   * Activates a run in a workflow thread (see CodeHost.activate): `init` and the whole history
   * when the run is not resident, else only its new events. A step that makes no progress for
   * the activation bound terminates the thread (`lost: 'time'`); a heap overflow loses it too
   * (`lost: 'memory'`) — every run resident there is then gone, and is replayed when next
   * activated. With `isolated`, the run is replayed alone in a thread of its own. Throws only
   * when the pool is closed.
   */
  activate(runId: string, init: RunInit, events: WorkflowEvent[], options: { isolated?: boolean } = {}): Promise<ActivationResult> {
    if (options.isolated) return this.activateIsolated(runId, init, events);
    const lane = this.laneFor(runId);
    return lane.serial(async () => {
      if (this.closed) throw new Error('the code pool is closed');
      const thread = lane.live();
      await this.withVersion(thread, init.version);
      const resident = lane.runs.has(runId);
      if (!resident) this.dropRun(runId);
      const reply = await this.watched(thread, this.limits.activationTimeoutMs, (id) => ({ t: 'activate', id, runId, init: resident ? undefined : init, events }));
      if (reply.activation === undefined) {
        lane.runs.delete(runId);
        this.home.delete(runId);
        return { lost: thread.dead ?? 'crash' };
      }
      if (reply.activation.status === 'blocked') {
        lane.runs.add(runId);
        this.home.set(runId, lane);
      } else {
        lane.runs.delete(runId);
        this.home.delete(runId);
      }
      return { activation: reply.activation };
    });
  }

  /**
   * Replays a run alone in a thread of its own, which is terminated afterwards (the run is then
   * resident nowhere). For a run whose thread died under it: a death there is its own doing.
   * `events` must be the run's whole history.
   */
  private async activateIsolated(runId: string, init: RunInit, events: WorkflowEvent[]): Promise<ActivationResult> {
    if (this.closed) throw new Error('the code pool is closed');
    this.dropRun(runId);
    const thread = new Thread('workflow', this.limits.workflowMemoryMb, this.sourceOf);
    this.isolated.add(thread);
    try {
      await this.withVersion(thread, init.version);
      // A confirmation, not a race: three bounds, so a run starved of CPU by its neighbours'
      // limits (say, a heap filling up while others spin) is judged by what it does itself.
      const reply = await this.watched(thread, 3 * this.limits.activationTimeoutMs, (id) => ({ t: 'activate', id, runId, init, events }));
      if (reply.activation === undefined) return { lost: thread.dead ?? 'crash' };
      return { activation: reply.activation };
    } finally {
      this.isolated.delete(thread);
      void thread.kill('crash');
    }
  }

  /**
   * Verifies a version's entry in the workflow thread (see CodeHost.verify): '' or the
   * problem. A verification that hangs or exhausts the heap is a problem too, and costs only
   * the thread (it is respawned for the next request).
   */
  verify(version: string, sources: VersionTexts, entry: string, entryFunction: string, activities: readonly string[]): Promise<string> {
    const lane = this.laneFor(undefined);
    return lane.serial(async () => {
      if (this.closed) throw new Error('the code pool is closed');
      // A scratch name, so a dry run or a refused package leaves nothing behind.
      const scratch = `verify:${version}:${Date.now()}`;
      const thread = lane.live();
      this.scratch.set(scratch, sources);
      thread.post({ t: 'version', version: scratch, names: sources.names });
      let reply: Reply;
      try {
        // A verification is refused whichever limit stops it: no bound of it gives way.
        reply = await this.watched(thread, this.limits.verifyTimeoutMs, (id) => ({ t: 'verify', id, version: scratch, entry, entryFunction, activities: [...activities] }), false);
      } finally {
        this.scratch.delete(scratch);
        thread.post({ t: 'drop-version', version: scratch });
      }
      if (reply.problem !== undefined) return reply.problem;
      if (thread.dead === 'time') return `evaluating entry module '${entry}' did not finish within ${this.limits.verifyTimeoutMs} ms (infinite loop?)`;
      if (thread.dead === 'memory') return `evaluating entry module '${entry}' exceeded the ${this.limits.workflowMemoryMb} MiB memory limit`;
      return `evaluating entry module '${entry}' failed: ${reply.failure ?? 'its thread died'}`;
    });
  }

  /**
   * Sends a request and kills the thread when it makes no step for `boundMs` (checked four
   * times per bound, so a hang is noticed within 1.25 bounds). The clock starts once the thread
   * is up: booting a fresh thread is not the code's time.
   */
  private async watched(thread: Thread, boundMs: number, make: (id: number) => ToWorker, givesWay = true): Promise<Reply> {
    await thread.ready;
    const watch = this.watchdog.progress(thread, boundMs, (this.limits.workflowMemoryMb * 1024 * 1024) / 2, givesWay);
    try {
      return await thread.request(make);
    } finally {
      this.watchdog.remove(watch);
    }
  }

  // ---- activities -------------------------------------------------------------------------------

  private async acquire(): Promise<Thread> {
    for (;;) {
      const thread = this.idle.pop();
      if (thread === undefined) break;
      if (thread.dead === undefined) return thread;
    }
    if (this.all.size < this.limits.activityThreads) {
      const thread = new Thread('activity', this.limits.activityMemoryMb, this.sourceOf);
      this.all.add(thread);
      thread.onDeath = () => this.all.delete(thread);
      return thread;
    }
    return new Promise<Thread>((resolve) => this.waiting.push(resolve));
  }

  private release(thread: Thread): void {
    if (thread.dead !== undefined) {
      // A dead thread makes room: let a waiter spawn a fresh one.
      const waiter = this.waiting.shift();
      if (waiter) void this.acquire().then(waiter);
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter(thread);
    else this.idle.push(thread);
  }

  /**
   * Runs one activity in an activity thread, bounded by `timeoutMs` for the whole call. Never
   * rejects: the outcome is the result, the activity's own failure, or a limit
   * (`code: resource_exhausted`, `limit: time | memory`), after which its thread is gone.
   */
  async runActivity(
    version: string,
    entry: string,
    name: string,
    input: unknown,
    timeoutMs: number,
    log?: (level: string, text: string) => void,
  ): Promise<ActivityOutcome> {
    if (this.closed) return { ok: false, error: { message: 'the engine is shutting down', name: 'ShutdownError' } };
    const thread = await this.acquire();
    try {
      await this.withVersion(thread, version);
      const watch = this.watchdog.deadline(thread, timeoutMs);
      const reply = await thread.request((id) => ({ t: 'activity', id, version, entry, name, input }), log);
      this.watchdog.remove(watch);
      if (reply.outcome !== undefined) return reply.outcome;
      return { ok: false, error: limitError(thread.dead, `activity '${name}'`, thread.dead === 'time' ? timeoutMs : this.limits.activityMemoryMb, reply.failure) };
    } finally {
      this.release(thread);
    }
  }

  /** Terminates every thread. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const threads = [...this.lanes.map((l) => l.thread), ...this.all, ...this.isolated].filter((t): t is Thread => t !== undefined);
    this.lanes.length = 0;
    this.home.clear();
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(threads.map((t) => t.kill('crash')));
  }
}

/** The error of a run ended by a limit (or by its thread dying of something else). */
export function limitError(death: Death | undefined, what: string, bound: number, failure?: string): ErrorInfo {
  if (death === 'time') return { message: `${what} exceeded its time limit of ${bound} ms`, name: 'ResourceExhausted', code: 'resource_exhausted', limit: 'time' };
  if (death === 'memory') return { message: `${what} exceeded its memory limit of ${bound} MiB`, name: 'ResourceExhausted', code: 'resource_exhausted', limit: 'memory' };
  return { message: `${what} could not be carried out: ${failure ?? 'its thread died'}`, name: 'Error' };
}
