// The host side of one vm context: package versions compiled into it, and (workflow mode) the
// runs resident in it, each with the bookkeeping that turns its code's calls into commands and
// checks them against its recorded history. A CodeHost lives inside a worker thread in the
// engine (src/runtime/worker.ts) and directly in the calling thread for tests and `replay()`.
//
// Workflow mode: one context for every run, intrinsics frozen (see prelude.ts); a run is
// activated with the events it has not seen yet — its whole history when it is not resident
// (replay, which is also the determinism check), only the new events when it is. Activity mode:
// one context per version, whose module instances every activity call of that version shares.
//
// Each event is applied in its own pump step, so the workflow's continuations run between
// events exactly as they did when the events first happened; with `timeoutMs`, each step is
// bounded (in a worker the engine bounds the worker instead, which costs nothing per step).

import { executionAsyncId } from 'node:async_hooks';
import vm from 'node:vm';
import type { Activation, ErrorInfo, WorkflowCommand, WorkflowEvent } from './history.js';
import { TERMINAL_EVENTS } from './history.js';
import { PRELUDE_SOURCE, type HostBridge, type PreludeApi, type RunConfig } from './prelude.js';
import { resolveSpecifier } from './resolve.js';
import { WORKFLOW_ID_PATTERN } from '../ids.js';

export { WORKFLOW_ID_PATTERN };

const PUMP = new vm.Script('__aion_pump__()', { filename: 'aion:pump' });
let preludeScript: vm.Script | undefined;

/** Thrown by a bounded step that ran out of time. */
export class StepTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`exceeded ${timeoutMs} ms`);
    this.name = 'StepTimeout';
  }
}

/** The code of a replayed run asked for something other than what its history recorded. */
export class NonDeterminismError extends Error {
  /** The step, e.g. "activity #2". */
  readonly step: string;
  constructor(step: string, detail: string) {
    super(`non-determinism at ${step}: ${detail}`);
    this.name = 'NonDeterminismError';
    this.step = step;
  }
}

/** What a run needs to be created in a host (its first activation carries it). */
export interface RunInit {
  workflowId: string;
  runId: string;
  workflowType: string;
  version: string;
  entryModule: string;
  entryFunction: string;
  /** The manifest's declared activities; null = unchecked. */
  activities: readonly string[] | null;
}

/** FNV-1a (32 bit) of the run id's UTF-16 code units: the PRNG seed of a run. */
export function seedOf(runId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < runId.length; i++) {
    hash ^= runId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

const json = (value: unknown): string => JSON.stringify(value === undefined ? null : value);

type Kind = 'activity' | 'timer' | 'child';
const KIND_LABEL: Record<Kind, string> = { activity: 'activity', timer: 'timer', child: 'child workflow' };
type Recorded =
  | Extract<WorkflowEvent, { type: 'ActivityScheduled' }>
  | Extract<WorkflowEvent, { type: 'TimerStarted' }>
  | Extract<WorkflowEvent, { type: 'ChildWorkflowStarted' }>;

function kindOfCommandEvent(event: WorkflowEvent): Kind | undefined {
  switch (event.type) {
    case 'ActivityScheduled':
      return 'activity';
    case 'TimerStarted':
      return 'timer';
    case 'ChildWorkflowStarted':
      return 'child';
    default:
      return undefined;
  }
}

/** One run's bookkeeping on the host side of the wall. */
class RunMachine {
  readonly counters: Record<Kind, number> = { activity: 0, timer: 0, child: 0 };
  readonly issued: Record<Kind, Set<number>> = { activity: new Set(), timer: new Set(), child: new Set() };
  readonly recorded: Record<Kind, Map<number, Recorded>> = { activity: new Map(), timer: new Map(), child: new Map() };
  /** Commands issued in the current activation that history does not record yet. */
  commands: WorkflowCommand[] = [];
  outcome: Exclude<Activation, { status: 'blocked' }> | undefined;
  fatal: NonDeterminismError | undefined;
  started = false;
  constructor(readonly init: RunInit) {}
  get done(): boolean {
    return this.outcome !== undefined || this.fatal !== undefined;
  }

  onCommand(kind: Kind, name: string, inputJson: string, workflowId: string): number {
    const seq = ++this.counters[kind];
    if (this.done) return seq;
    this.issued[kind].add(seq);
    const step = `${KIND_LABEL[kind]} #${seq}`;
    const previous = this.recorded[kind].get(seq);
    if (previous !== undefined) {
      this.check(step, previous, name);
      return seq;
    }
    const input: unknown = JSON.parse(inputJson);
    if (kind === 'activity') this.commands.push({ type: 'ScheduleActivity', seq, name, input });
    else if (kind === 'timer') this.commands.push({ type: 'StartTimer', seq, seconds: input as number });
    else {
      const command: WorkflowCommand = { type: 'StartChild', seq, workflow_type: name, input };
      if (workflowId !== '') command.workflow_id = workflowId;
      this.commands.push(command);
    }
    return seq;
  }

  private check(step: string, previous: Recorded, name: string): void {
    if (previous.type === 'ActivityScheduled' && previous.name !== name) {
      this.fatal = new NonDeterminismError(step, `history has '${previous.name}', code asked for '${name}'`);
    } else if (previous.type === 'ChildWorkflowStarted' && previous.workflow_type !== name) {
      this.fatal = new NonDeterminismError(step, `history has workflow type '${previous.workflow_type}', code asked for '${name}'`);
    }
  }

  /** A command event arrives: it records a call already issued (resident) or one still to come (replay). */
  record(kind: Kind, event: Recorded): void {
    this.recorded[kind].set(event.seq, event);
    if (this.issued[kind].has(event.seq)) {
      // Issued in an earlier activation: what the engine recorded must be what was issued.
      const name = event.type === 'ActivityScheduled' ? event.name : event.type === 'ChildWorkflowStarted' ? event.workflow_type : '';
      this.check(`${KIND_LABEL[kind]} #${event.seq}`, event, name);
    }
  }

  onSettle(status: string, text: string): void {
    if (this.done) return;
    const value: unknown = JSON.parse(text);
    if (status === 'completed') this.outcome = { status: 'completed', commands: [], result: value };
    else if (status === 'continued_as_new') this.outcome = { status: 'continued_as_new', commands: [], input: value };
    else this.outcome = { status: 'failed', commands: [], error: value as ErrorInfo };
  }
}

// ---- unhandled rejections inside sandboxes ------------------------------------------------------
// V8 reports promise rejections isolate-wide, so a rejected promise that workflow or activity
// code leaves unhandled would reach `process` and, under Node's default `throw` mode, kill the
// thread. The filter swallows rejections of sandbox promises only; any other unhandled
// rejection is rethrown (the default behaviour) when no other listener is installed.

const sandboxPromisePrototypes = new WeakSet<object>();
let rejectionFilterInstalled = false;

/** Whether a promise was made inside one of the runtime's sandboxes. Never throws. */
export function isSandboxPromise(promise: unknown): boolean {
  if (typeof promise !== 'object' || promise === null) return false;
  const proto: unknown = Object.getPrototypeOf(promise);
  return typeof proto === 'object' && proto !== null && sandboxPromisePrototypes.has(proto);
}

function installRejectionFilter(): void {
  if (rejectionFilterInstalled) return;
  rejectionFilterInstalled = true;
  process.on('unhandledRejection', (reason, promise) => {
    if (isSandboxPromise(promise)) return;
    if (process.listenerCount('unhandledRejection') === 1) throw reason;
  });
}

// ---- the async-hooks stack after a timeout ------------------------------------------------------
// With async hooks enabled (the test runner enables them), a timeout that terminates a
// sandbox's microtask drain skips the pops of the async contexts its jobs pushed, and Node later
// aborts with "async hook stack has become corrupted". After a terminated step we pop the
// orphaned entries back to the id the step started with (legacy binding, only in that case).

interface AsyncWrapBinding {
  popAsyncContext(asyncId: number): boolean;
}
let asyncWrap: AsyncWrapBinding | null | undefined;

function restoreAsyncContext(saved: number): void {
  if (executionAsyncId() === saved) return;
  if (asyncWrap === undefined) {
    const muted = process.noDeprecation;
    process.noDeprecation = true;
    try {
      asyncWrap = (process as unknown as { binding(name: string): AsyncWrapBinding }).binding('async_wrap');
    } catch {
      asyncWrap = null;
    } finally {
      process.noDeprecation = muted;
    }
  }
  if (asyncWrap === null || typeof asyncWrap.popAsyncContext !== 'function') return;
  for (let i = 0; i < 100_000 && executionAsyncId() !== saved; i++) {
    if (!asyncWrap.popAsyncContext(executionAsyncId())) break;
  }
}

/** Activity-mode callbacks of one call. */
export interface ActivityCallbacks {
  log?: (level: string, text: string) => void;
}

export type ActivityOutcome = { ok: true; value: unknown } | { ok: false; error: ErrorInfo };

interface Context {
  context: vm.Context;
  api: PreludeApi;
}

export interface CodeHostOptions {
  /** Bound of each step in this thread; absent = unbounded (a worker is bounded from outside). */
  timeoutMs?: number;
  /** Called after every step (a worker counts them, so its owner can tell progress from a hang). */
  onStep?: () => void;
  /** The source of a module added without one (a worker asks its owner for it, synchronously). */
  fetchSource?: (version: string, name: string) => string | undefined;
}

export class CodeHost {
  /** Each version's modules by logical name; a source may come later (`fetchSource`). */
  private readonly sources = new Map<string, Map<string, string | undefined>>();
  /** Workflow mode: the one shared context. Activity mode: a context per version. */
  private shared: Context | undefined;
  private readonly perVersion = new Map<string, Context>();
  private readonly runs = new Map<string, RunMachine>();
  private currentRun: RunMachine | undefined;
  private job: (() => void) | undefined;
  // Activity mode.
  private readonly calls = new Map<number, { resolve: (o: ActivityOutcome) => void; callbacks: ActivityCallbacks; timers: Set<number> }>();
  private readonly timers = new Map<number, { handle: NodeJS.Timeout; call: number }>();
  private nextTimer = 1;
  private nextCall = 1;

  constructor(
    readonly mode: 'workflow' | 'activity',
    private readonly options: CodeHostOptions = {},
  ) {
    installRejectionFilter();
  }

  // ---- versions ----------------------------------------------------------------------------------

  /**
   * Adds a version's modules (logical name → source, or undefined to fetch it when first
   * required). Each module is compiled into a context on its first require there.
   */
  addVersion(version: string, modules: Iterable<readonly [string, string | undefined]>): void {
    if (this.sources.has(version)) return;
    this.sources.set(version, new Map(modules));
  }

  hasVersion(version: string): boolean {
    return this.sources.has(version);
  }

  dropVersion(version: string): void {
    this.sources.delete(version);
    this.perVersion.delete(version);
    if (this.shared) {
      const shared = this.shared;
      this.pump(shared, () => shared.api.dropVersion(version));
    }
  }

  private contextFor(version: string): Context {
    let ctx = this.mode === 'workflow' ? this.shared : this.perVersion.get(version);
    if (ctx === undefined) {
      ctx = this.createContext();
      if (this.mode === 'workflow') this.shared = ctx;
      else this.perVersion.set(version, ctx);
    }
    if (!this.sources.has(version)) throw new Error(`package version ${version} is not available to this code host`);
    return ctx;
  }

  private createContext(): Context {
    const store = Object.create(null) as object;
    const context = vm.createContext(store, {
      name: `aion ${this.mode}`,
      microtaskMode: 'afterEvaluate',
      codeGeneration: { strings: false, wasm: false },
    });
    sandboxPromisePrototypes.add(vm.runInContext('Promise.prototype', context) as object);
    const bridge = this.bridge();
    preludeScript ??= new vm.Script(PRELUDE_SOURCE, { filename: 'aion:prelude' });
    const init = preludeScript.runInContext(context) as (host: HostBridge, json: string, store: object) => PreludeApi;
    const api = init(bridge, JSON.stringify({ mode: this.mode, workflowIdPattern: WORKFLOW_ID_PATTERN }), store);
    const ctx: Context = { context, api };
    if (this.mode === 'workflow') this.pump(ctx, () => api.lockdown());
    return ctx;
  }

  /** The host functions the sandbox calls: primitives in and out, and none of them throws. */
  private bridge(): HostBridge {
    const safe = <A extends unknown[], R>(fallback: R, fn: (...args: A) => R) => (...args: A): R => {
      try {
        return fn(...args);
      } catch {
        return fallback;
      }
    };
    return {
      runJob: () => {
        const job = this.job;
        this.job = undefined;
        job?.();
      },
      need: safe('the module could not be compiled', (version: unknown, name: unknown) => {
        if (typeof version !== 'string' || typeof name !== 'string') return 'invalid module name';
        const modules = this.sources.get(version);
        if (modules === undefined || !modules.has(name)) return `no module '${name}' in this package version`;
        let source = modules.get(name);
        if (source === undefined) {
          source = this.options.fetchSource?.(version, name);
          if (source === undefined) return `the source of module '${name}' is not available`;
          modules.set(name, source);
        }
        const ctx = this.mode === 'workflow' ? this.shared : this.perVersion.get(version);
        if (ctx === undefined) return 'no context';
        // compileFunction runs nothing (no microtask checkpoint in the middle of a require), and
        // the function belongs to the context's realm.
        let wrapper: unknown;
        try {
          wrapper = vm.compileFunction(source, ['exports', 'require', 'module'], { filename: `${name}$${version}`, parsingContext: ctx.context });
        } catch {
          return `module '${name}' does not compile`;
        }
        Object.freeze(wrapper);
        ctx.api.defineModule(version, name, wrapper);
        return '';
      }),
      resolve: safe('!cannot resolve that specifier', (version: unknown, from: unknown, spec: unknown) => {
        if (typeof version !== 'string' || typeof from !== 'string' || typeof spec !== 'string' || spec.length > 1024) return '!invalid require specifier';
        const modules = this.sources.get(version);
        const resolution = resolveSpecifier(from, spec, (name) => modules?.has(name) ?? false);
        return resolution.ok ? resolution.name : `!${resolution.message}`;
      }),
      command: safe(0, (kind: unknown, name: unknown, inputJson: unknown, workflowId: unknown) => {
        const run = this.currentRun;
        if (run === undefined || (kind !== 'activity' && kind !== 'timer' && kind !== 'child')) return 0;
        if (typeof name !== 'string' || typeof inputJson !== 'string' || typeof workflowId !== 'string') return 0;
        return run.onCommand(kind, name, inputJson, workflowId);
      }),
      settle: safe(undefined, (status: unknown, text: unknown) => {
        if (typeof status === 'string' && typeof text === 'string') this.currentRun?.onSettle(status, text);
      }),
      log: safe(undefined, (level: unknown, text: unknown) => {
        if (typeof level !== 'string' || typeof text !== 'string') return;
        const call = this.activeCall === undefined ? undefined : this.calls.get(this.activeCall);
        call?.callbacks.log?.(level, text.length > 65536 ? `${text.slice(0, 65536)}…` : text);
      }),
      setTimer: safe(0, (ms: unknown) => {
        const id = this.nextTimer++;
        const call = this.activeCall;
        if (call === undefined || typeof ms !== 'number') return id;
        const handle = setTimeout(() => {
          this.timers.delete(id);
          this.calls.get(call)?.timers.delete(id);
          const ctx = this.callContext.get(call);
          if (ctx) this.runCallStep(call, ctx, () => ctx.api.fireTimer(id, call));
        }, ms);
        this.timers.set(id, { handle, call });
        this.calls.get(call)?.timers.add(id);
        return id;
      }),
      clearTimer: safe(undefined, (id: unknown) => {
        const timer = typeof id === 'number' ? this.timers.get(id) : undefined;
        if (timer === undefined) return;
        clearTimeout(timer.handle);
        this.timers.delete(id as number);
        this.calls.get(timer.call)?.timers.delete(id as number);
      }),
      activityDone: safe(undefined, (callId: unknown, ok: unknown, text: unknown) => {
        if (typeof callId !== 'number' || typeof text !== 'string') return;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return;
        }
        this.finishCall(callId, ok === true ? { ok: true, value } : { ok: false, error: value as ErrorInfo });
      }),
    };
  }

  /** Runs `job` inside the context and drains its microtasks; bounded when the host is. */
  private pump(ctx: Context, job: () => void): void {
    this.job = job;
    const bound = this.options.timeoutMs;
    if (bound === undefined) {
      try {
        PUMP.runInContext(ctx.context);
      } finally {
        this.job = undefined;
        this.options.onStep?.();
      }
      return;
    }
    const asyncId = executionAsyncId();
    try {
      PUMP.runInContext(ctx.context, { timeout: Math.max(1, Math.ceil(bound)) });
    } catch (error) {
      restoreAsyncContext(asyncId);
      if ((error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new StepTimeout(Math.max(1, Math.ceil(bound)));
      throw error;
    } finally {
      this.job = undefined;
    }
  }

  // ---- workflow runs -----------------------------------------------------------------------------

  hasRun(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Forgets a run (evicted, or ended) and drops its slot now. Never throws. */
  dropRun(runId: string): void {
    this.retire(runId);
    this.tidy();
  }

  /** Runs that ended in their last activation, whose slots the context still holds. */
  private readonly ended: string[] = [];

  /** Forgets a run that just ended; its slot goes at the next `tidy` (after the reply is out). */
  private retire(runId: string): void {
    if (this.runs.delete(runId)) this.ended.push(runId);
  }

  /**
   * Drops the slots of runs that ended (see `retire`): the worker calls this once the activation's
   * reply is posted, so the owner is not kept waiting for it; every activation begins with it.
   * Never throws.
   */
  tidy(): void {
    if (this.ended.length === 0) return;
    const ids = this.ended.splice(0);
    const shared = this.shared;
    if (!shared) return;
    try {
      this.pump(shared, () => {
        for (const id of ids) shared.api.dropRun(id);
      });
    } catch {
      // A context that cannot even drop a run is abandoned by its owner.
    }
  }

  get residentRuns(): number {
    return this.runs.size;
  }

  /**
   * Applies `events` to a run and returns its status and the commands it issued that history
   * does not record yet. Without the run resident, `init` is required and `events` must be its
   * whole history from WorkflowStarted (a replay, checked for determinism). Never throws for
   * anything the workflow does: its exceptions, a result that is not JSON, a step exceeding the
   * bound and non-determinism come back as a `failed` activation, after which the run is gone
   * from this host. Throws for a history that does not start with WorkflowStarted.
   */
  activate(runId: string, init: RunInit | undefined, events: readonly WorkflowEvent[]): Activation {
    this.tidy();
    let run = this.runs.get(runId);
    if (run === undefined) {
      if (init === undefined) throw new Error(`run ${runId} is not resident in this code host`);
      const first = events[0];
      if (first === undefined || first.type !== 'WorkflowStarted') throw new Error(`history of run ${runId} does not start with WorkflowStarted`);
      run = new RunMachine(init);
      this.runs.set(runId, run);
    }
    const ctx = this.contextFor(run.init.version);
    const machine = run;
    const failed = (error: ErrorInfo): Activation => {
      this.retire(runId);
      return { status: 'failed', commands: [], error };
    };
    const step = (what: string, job: () => void, before?: () => void): Activation | undefined => {
      this.currentRun = machine;
      try {
        this.pump(ctx, () => {
          before?.();
          ctx.api.enter(runId);
          job();
        });
        return undefined;
      } catch (error) {
        if (error instanceof StepTimeout) {
          return failed({
            message: `workflow activation exceeded ${error.timeoutMs} ms (infinite loop?) while ${what}`,
            name: 'ActivationTimeout',
            code: 'resource_exhausted',
            limit: 'time',
          });
        }
        const message = error instanceof Error ? error.message : String(error);
        return failed({ message: `workflow activation failed while ${what}: ${message}`, name: 'ActivationError' });
      } finally {
        this.currentRun = undefined;
      }
    };

    const resolving: WorkflowEvent[] = [];
    for (const event of events) {
      if (TERMINAL_EVENTS.has(event.type)) break;
      const kind = kindOfCommandEvent(event);
      if (kind !== undefined) machine.record(kind, event as Recorded);
      else resolving.push(event);
    }

    for (const event of resolving) {
      if (machine.done) break;
      if (event.type === 'WorkflowStarted') {
        if (machine.started) continue;
        machine.started = true;
        const config: RunConfig = {
          version: machine.init.version,
          entryModule: machine.init.entryModule,
          entryFunction: machine.init.entryFunction,
          seed: seedOf(runId),
          now: event.at,
          activities: machine.init.activities === null ? null : [...machine.init.activities],
          info: { workflowId: machine.init.workflowId, runId, workflowType: machine.init.workflowType, version: machine.init.version },
        };
        // One entry into the context: the run's slot is made, then the code starts.
        const configJson = JSON.stringify(config);
        const stopped = step('starting the workflow', () => ctx.api.start(json(event.input)), () => ctx.api.createRun(runId, configJson));
        if (stopped !== undefined) return stopped;
        continue;
      }
      let kind: Kind | undefined;
      let apply: (() => void) | undefined;
      switch (event.type) {
        case 'ActivityCompleted':
          kind = 'activity';
          apply = () => ctx.api.resolvePending('activity', event.seq, json(event.result));
          break;
        case 'ActivityFailed':
          kind = 'activity';
          apply = () => ctx.api.rejectPending('activity', event.seq, event.error.message, event.error.name ?? '');
          break;
        case 'TimerFired':
          kind = 'timer';
          apply = () => ctx.api.resolvePending('timer', event.seq, 'null');
          break;
        case 'ChildWorkflowCompleted':
          kind = 'child';
          apply = () => ctx.api.resolvePending('child', event.seq, json(event.result));
          break;
        case 'ChildWorkflowFailed':
          kind = 'child';
          apply = () => ctx.api.rejectPending('child', event.seq, event.error.message, event.error.name ?? '');
          break;
        case 'SignalReceived':
          apply = () => ctx.api.signal(event.name, json(event.input));
          break;
        default:
          continue;
      }
      if (kind !== undefined && 'seq' in event && !machine.issued[kind].has(event.seq)) {
        machine.fatal = new NonDeterminismError(`${KIND_LABEL[kind]} #${event.seq}`, `history has its ${event.type}, but the code has not asked for it`);
        break;
      }
      if (!machine.started) {
        machine.fatal = new NonDeterminismError('start', `history has ${event.type} before the run started`);
        break;
      }
      const label = 'seq' in event ? `${event.type} #${event.seq}` : `${event.type} '${(event as { name: string }).name}'`;
      const at = event.at;
      const run = apply;
      const stopped = step(`applying ${label}`, () => {
        ctx.api.setNow(at);
        run();
      });
      if (stopped !== undefined) return stopped;
    }

    if (machine.fatal === undefined) {
      for (const kind of ['activity', 'timer', 'child'] as const) {
        for (const [seq, event] of machine.recorded[kind]) {
          if (machine.issued[kind].has(seq)) continue;
          const what =
            event.type === 'ActivityScheduled' ? `'${event.name}' scheduled`
            : event.type === 'ChildWorkflowStarted' ? `child '${event.workflow_type}' started`
            : 'a timer started';
          machine.fatal ??= new NonDeterminismError(`${KIND_LABEL[kind]} #${seq}`, `history has ${what}, but the code never asked for it`);
        }
      }
    }
    if (machine.fatal !== undefined) return failed({ message: machine.fatal.message, name: machine.fatal.name });
    const commands = machine.commands;
    machine.commands = [];
    if (machine.outcome !== undefined) {
      this.retire(runId);
      return { ...machine.outcome, commands };
    }
    return { status: 'blocked', commands };
  }

  // ---- entry verification ------------------------------------------------------------------------

  /** Evaluates the entry module in a fresh run-less scope and checks its exports: '' or the problem. */
  verify(version: string, entryModule: string, entryFunction: string, activities: readonly string[]): string {
    const modules = this.sources.get(version);
    if (modules === undefined || !modules.has(entryModule)) return `entry module '${entryModule}' is not among the package's modules`;
    const ctx = this.contextFor(version);
    let problem = '';
    try {
      this.pump(ctx, () => {
        problem = ctx.api.verify(version, entryModule, entryFunction, JSON.stringify(activities));
      });
    } catch (error) {
      if (error instanceof StepTimeout) return `evaluating entry module '${entryModule}' did not finish within ${error.timeoutMs} ms (infinite loop?)`;
      return `evaluating entry module '${entryModule}' failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    return problem;
  }

  // ---- activities ----------------------------------------------------------------------------------

  private activeCall: number | undefined;
  private readonly callContext = new Map<number, Context>();

  /**
   * Runs `exports.activities[name](input)` of the version's entry module. Resolves with the
   * outcome (never rejects): the activity's result, or the ErrorInfo of its failure (it threw
   * or rejected, is missing, its module failed to load, its result is not JSON). In this
   * thread, a step beyond the bound fails the call with an ActivityTimeout.
   */
  callActivity(version: string, entryModule: string, name: string, input: unknown, callbacks: ActivityCallbacks = {}): Promise<ActivityOutcome> {
    const ctx = this.contextFor(version);
    const callId = this.nextCall++;
    return new Promise<ActivityOutcome>((resolve) => {
      this.calls.set(callId, { resolve, callbacks, timers: new Set() });
      this.callContext.set(callId, ctx);
      this.runCallStep(callId, ctx, () => ctx.api.callActivity(callId, version, entryModule, name, json(input)));
    });
  }

  private runCallStep(callId: number, ctx: Context, job: () => void): void {
    if (!this.calls.has(callId)) return;
    this.activeCall = callId;
    try {
      this.pump(ctx, job);
    } catch (error) {
      if (error instanceof StepTimeout) {
        this.finishCall(callId, { ok: false, error: { message: `activity step exceeded ${error.timeoutMs} ms`, name: 'ActivityTimeout', code: 'resource_exhausted', limit: 'time' } });
      } else {
        this.finishCall(callId, { ok: false, error: { message: error instanceof Error ? error.message : String(error), name: 'Error' } });
      }
    } finally {
      this.activeCall = undefined;
    }
  }

  /** Ends a call: its outcome is delivered once and its pending timers are cancelled. */
  finishCall(callId: number, outcome: ActivityOutcome): void {
    const call = this.calls.get(callId);
    if (call === undefined) return;
    this.calls.delete(callId);
    this.callContext.delete(callId);
    for (const id of call.timers) {
      const timer = this.timers.get(id);
      if (timer) clearTimeout(timer.handle);
      this.timers.delete(id);
    }
    call.resolve(outcome);
  }

  /** Cancels every call in progress with `outcome` (a thread's owner abandoning it). */
  cancelCalls(outcome: ActivityOutcome): void {
    for (const id of [...this.calls.keys()]) this.finishCall(id, outcome);
  }
}
