// Run lifecycle: start, signal, terminate, list, show, recover, timers — the public face of the
// run side. Driving a run is the Driver's (driver.ts); which runs execute here is LiveRuns'
// (live.ts); what a run's state implies in the index is run-state.ts's. Each workflow has at
// most one drive task at a time; different workflows advance concurrently, so a slow activity
// of one run never delays another run's start, signal or timer.
//
// Durability: starts, signals and terminations are on disk (synced) before they are reported;
// the internal steps of a run are written without a sync and made durable by the next flush
// (at the latest, the one before the command that caused them reports).
import { randomUUID } from 'node:crypto';
import { AionError } from '../errors.js';
import { faultPoint } from '../faults.js';
import { K } from '../store/keys.js';
import { del } from '../store/store.js';
import { describeSchemaErrors } from '../package/schema.js';
import type { VersionEntry } from '../catalog/catalog.js';
import { Driver, validateWorkflowId, type RunDeps } from './driver.js';
import { summary, type RunRecord } from './run-state.js';
import { asCommand } from './lease-context.js';
import type { RunDetail, RunSummary, SignalOutcome, StartOutcome } from './types.js';

export type { RunRecord } from './run-state.js';
export { validateWorkflowId } from './driver.js';

/** A start whose transaction found the route moved: resolve the version again. */
const RESOLVE_AGAIN = Symbol('resolve again');

export interface RunFilter {
  type?: string;
  version?: string;
  status?: string;
}

export class RunManager {
  readonly driver: Driver;
  /** The drive task of each workflow being advanced in this process. */
  private readonly tasks = new Map<string, Promise<void>>();
  /** Workflows asked to advance again while their task was running. */
  private readonly again = new Set<string>();
  /** Waiters' groups of workflow ids: a run woken by one in a group joins the group. */
  private readonly watchers = new Map<string, Set<Set<string>>>();
  /** Called whenever a drive task ends (the serving loop looks at timers again). */
  onTaskDone: (() => void) | undefined;

  constructor(private readonly deps: RunDeps) {
    this.driver = new Driver(deps);
  }

  /** On a shared store: runs are driven here only while `mayDrive` says this worker leases them. */
  leasedBy(mayDrive: (workflowId: string) => Promise<boolean>): void {
    this.deps.mayDrive = mayDrive;
  }

  /** `aion serve`: every active run it recovers stays live (executing here) until it ends. */
  get residentAll(): boolean {
    return this.deps.live.serving;
  }
  set residentAll(value: boolean) {
    this.deps.live.serving = value;
  }

  /** TimerFired events recorded by this process. */
  get timersFired(): number {
    return this.driver.timersFired;
  }

  getRun(workflowId: string): Promise<RunRecord | undefined> {
    return this.driver.getRun(workflowId);
  }

  readHistory(runId: string) {
    return this.driver.readHistory(runId);
  }

  // --- commands ------------------------------------------------------------------------------

  /**
   * Starts a run on the routed version of its type. The version is resolved under an
   * in-flight start pin held until the WorkflowStarted event (with its run pin) is recorded,
   * after the version's archive has been read and verified (so no run is ever recorded on a
   * version that cannot run here). Then drives the run until it completes or waits, and makes
   * it durable before returning. Failures: `not_found` (type not loaded), `conflict` (id already
   * running), `usage`, `shutting_down`, `store` (nothing recorded).
   */
  async start(workflowType: string, input: unknown, options: { workflowId?: string } = {}): Promise<StartOutcome> {
    const { gate, catalog, store } = this.deps;
    const end = gate.begin('start');
    let workflowId: string;
    let runId: string;
    let version: string;
    try {
      const generated = options.workflowId === undefined;
      workflowId = options.workflowId ?? this.generateId(workflowType);
      validateWorkflowId(workflowId);
      const code = await this.deps.code();
      for (let attempt = 0; ; attempt++) {
        const id = workflowId;
        // The version (routed, or ramping for this id) is pinned until the start is recorded.
        const pin = catalog.pinStart(workflowType, id);
        let started: string | undefined | typeof RESOLVE_AGAIN;
        try {
          version = pin.entry.version;
          await this.checkInput(pin.entry, input);
          await code.ensure(pin.entry);
          started = await this.driver.withLock(id, () =>
            store.hold(async () => {
              // The transaction may have reloaded the catalog (another process deployed): a
              // start records the version the committed route names, or resolves again.
              if (catalog.startEntry(workflowType, id)?.version !== pin.entry.version) return RESOLVE_AGAIN;
              // The run's first activation begins now, beside the conflict check and the write
              // (startBatch); it is discarded unless the start is written.
              const newRunId = randomUUID();
              const { ops, seed, discard } = this.driver.startBatch(id, newRunId, pin.entry, input, null, undefined, code);
              try {
                const existing = await this.getRun(id);
                // A generated id that names an existing workflow (any status) is drawn again:
                // reusing it would replace that workflow's record.
                if (existing && generated && attempt < 5) {
                  discard();
                  return undefined;
                }
                if (existing && existing.status === 'running') {
                  throw new AionError('conflict', `workflow '${id}' is already running (run ${existing.run_id} on version ${existing.version.slice(0, 12)})`, {
                    details: { workflow_id: id, run_id: existing.run_id },
                    hint: `pick another --id, or wait for it to finish (aion show ${id})`,
                  });
                }
                faultPoint('start.before-write');
                await store.write(ops, { sync: false });
              } catch (error) {
                discard();
                throw error;
              }
              faultPoint('start.after-write');
              this.deps.live.forget(id);
              this.driver.forgetEnded(id);
              seed();
              return newRunId;
            }),
          );
        } finally {
          pin.release();
        }
        if (started === RESOLVE_AGAIN) continue;
        if (started !== undefined) {
          runId = started;
          break;
        }
        workflowId = this.generateId(workflowType);
      }
      this.enqueue(workflowId);
    } finally {
      end();
    }
    await this.settle([workflowId]);
    await store.flush();
    const rec = await this.latest(workflowId);
    return {
      workflow_id: workflowId,
      run_id: runId,
      workflow_type: workflowType,
      version,
      status: rec?.run_id === runId ? rec.status : rec ? 'continued_as_new' : 'running',
    };
  }

  /**
   * `usage` with `error.schema_errors` when `input` breaks the input schema of the version a
   * start resolved (compiled once per version; ajv imported only for a type with a schema).
   */
  private async checkInput(entry: VersionEntry, input: unknown): Promise<void> {
    const validate = this.deps.schemas.validator(entry.version, entry.manifest, entry.workflowType, 'input');
    if (!validate) return;
    const errors = (await validate)(input ?? null);
    if (errors.length === 0) return;
    throw new AionError('usage', `the input does not match the input schema of '${entry.workflowType}' (version ${entry.version.slice(0, 12)}): ${describeSchemaErrors(errors)}`, {
      details: { workflow_type: entry.workflowType, version: entry.version, schema_errors: errors },
      hint: `see the schema with: aion inspect <archive>`,
    });
  }

  /** A workflow id for a start without `--id`: the type and 8 random hex digits. Replaceable in tests. */
  generateId = (workflowType: string): string => `${workflowType}-${randomUUID().slice(0, 8)}`;

  /** The run record as this process last knew it, or read. */
  private async latest(workflowId: string): Promise<RunRecord | undefined> {
    const cached = this.deps.live.state(workflowId);
    if (cached && cached.epoch === this.deps.store.epoch) return cached.rec;
    return this.driver.endedRecord(workflowId) ?? this.getRun(workflowId);
  }

  /** Delivers a signal to a workflow's current run (synced) and drives it. Fails `not_found` if not running. */
  async signal(workflowId: string, name: string, input: unknown): Promise<SignalOutcome> {
    const end = this.deps.gate.begin('signal');
    let runId: string;
    try {
      runId = await this.driver.withLock(workflowId, () => asCommand(async () => {
        const state = await this.requireRunning(workflowId, 'signal');
        faultPoint('signal.before-write');
        await this.driver.append(state, [{ type: 'SignalReceived', at: Date.now(), name, input }], { seen: false });
        faultPoint('signal.after-write');
        return state.rec.run_id;
      }));
      this.enqueue(workflowId);
    } finally {
      end();
    }
    await this.settle([workflowId]);
    await this.deps.store.flush();
    const rec = await this.latest(workflowId);
    return { workflow_id: workflowId, run_id: rec?.run_id ?? runId, status: rec?.status ?? 'running' };
  }

  /** Ends a running workflow's current run as terminated (synced). Fails `not_found` if not running. */
  async terminate(workflowId: string, reason: string): Promise<SignalOutcome> {
    const end = this.deps.gate.begin('terminate');
    try {
      const rec = await this.driver.withLock(workflowId, () => asCommand(async () => {
        const state = await this.requireRunning(workflowId, 'terminate');
        faultPoint('terminate.before-write');
        await this.driver.append(state, [{ type: 'WorkflowTerminated', at: Date.now(), reason }], { seen: true, patch: { status: 'terminated', error: { message: reason } }, sync: true });
        faultPoint('terminate.after-write');
        this.driver.forget(workflowId, state.rec.run_id);
        this.deps.live.unmark(workflowId);
        return state.rec;
      }));
      if (rec.parent) {
        this.enqueue(rec.parent.workflow_id);
        await this.settle([rec.parent.workflow_id]);
        await this.deps.store.flush();
      }
      return { workflow_id: workflowId, run_id: rec.run_id, status: 'terminated' };
    } finally {
      end();
    }
  }

  async list(filter: RunFilter = {}): Promise<RunSummary[]> {
    const runs: RunSummary[] = [];
    for await (const [, rec] of this.deps.store.scanJSON<RunRecord>(K.runRange(), (k) => this.deps.warn(`skipping corrupt run record ${k.replace(/\x00/g, '/')}`))) {
      if (filter.type !== undefined && rec.workflow_type !== filter.type) continue;
      if (filter.version !== undefined && !rec.version.startsWith(filter.version.toLowerCase())) continue;
      if (filter.status !== undefined && rec.status !== filter.status) continue;
      runs.push(summary(rec));
    }
    return runs;
  }

  async show(workflowId: string): Promise<RunDetail> {
    const rec = await this.getRun(workflowId);
    if (!rec) throw unknownWorkflow(workflowId);
    const history = await this.readHistory(rec.run_id);
    return { ...summary(rec), result: rec.result ?? null, error: rec.error ?? null, history };
  }

  // --- driving -------------------------------------------------------------------------------

  /** Asks for a workflow to be advanced (at most one drive task per workflow). Never throws: failures become warnings. */
  enqueue(workflowId: string): void {
    if (this.tasks.has(workflowId)) {
      this.again.add(workflowId);
      return;
    }
    const task = (async () => {
      do {
        this.again.delete(workflowId);
        try {
          const woken = await this.driver.advance(workflowId);
          for (const id of woken) {
            for (const group of this.watchers.get(workflowId) ?? []) this.watch(id, group);
            if (id === workflowId) this.again.add(id);
            else this.enqueue(id);
          }
        } catch (error) {
          this.deps.warn(`run ${workflowId} could not progress: ${(error as Error).message}`);
        }
      } while (this.again.has(workflowId));
    })().finally(() => {
      this.tasks.delete(workflowId);
      this.onTaskDone?.();
    });
    this.tasks.set(workflowId, task);
  }

  /** No run is being advanced in this process. */
  get idle(): boolean {
    return this.tasks.size === 0;
  }

  private watch(workflowId: string, group: Set<string>): void {
    group.add(workflowId);
    let groups = this.watchers.get(workflowId);
    if (!groups) this.watchers.set(workflowId, (groups = new Set()));
    groups.add(group);
  }

  /**
   * Waits until the given workflows — and every run they wake meanwhile (children, parents,
   * successors) — can go no further; without ids, until no run is being advanced at all.
   */
  async settle(workflowIds?: string[]): Promise<void> {
    if (workflowIds === undefined) {
      while (this.tasks.size > 0) await Promise.allSettled([...this.tasks.values()]);
      return;
    }
    const group = new Set<string>();
    for (const id of workflowIds) this.watch(id, group);
    try {
      for (;;) {
        const running = [...group].flatMap((id) => this.tasks.get(id) ?? []);
        if (running.length === 0) return;
        await Promise.allSettled(running);
      }
    } finally {
      for (const id of group) {
        const groups = this.watchers.get(id);
        groups?.delete(group);
        if (groups?.size === 0) this.watchers.delete(id);
      }
    }
  }

  /**
   * Recovery: advances every active run (starting recorded-but-unstarted children on their
   * recorded versions). With `wait: false` it returns once they are queued.
   */
  async recoverAll(options: { wait?: boolean } = {}): Promise<number> {
    const ids: string[] = [];
    for await (const k of this.deps.store.keys(K.activeRange())) ids.push(k.slice(K.activeRange().gt.length));
    for (const id of ids) {
      if (this.deps.live.serving) {
        const rec = await this.getRun(id);
        if (rec && rec.status === 'running') this.deps.live.mark({ workflowId: id, runId: rec.run_id, workflowType: rec.workflow_type, version: rec.version });
      }
      this.enqueue(id);
    }
    if (options.wait !== false) await this.settle(ids);
    return ids.length;
  }

  /** The fire time (ms) of the earliest pending timer, if any. */
  async nextTimerAt(): Promise<number | undefined> {
    for await (const k of this.deps.store.keys({ ...K.timerRange(), limit: 1 })) {
      return Number(k.split('\x00')[1]);
    }
    return undefined;
  }

  /**
   * Fires every timer due by `now` and advances the runs they wake; returns how many fired.
   * A timer of a run that is busy right now (say, in a long activity) is left to that run's
   * own drive task, which fires due timers when it next steps; with `wait: false` the call
   * returns without waiting for the woken runs.
   */
  async fireDueTimers(now = Date.now(), options: { wait?: boolean } = {}): Promise<number> {
    const due: { key: string; workflowId: string; seq: number }[] = [];
    for await (const k of this.deps.store.keys(K.timersDueBy(now))) {
      const [, , workflowId, seq] = k.split('\x00');
      due.push({ key: k, workflowId: workflowId!, seq: Number(seq) });
    }
    const woken: string[] = [];
    let fired = 0;
    for (const t of due) {
      // A run another worker leases fires its own timers.
      if (this.deps.mayDrive && !(await this.deps.mayDrive(t.workflowId))) continue;
      if (options.wait === false && this.tasks.has(t.workflowId)) {
        this.enqueue(t.workflowId);
        continue;
      }
      woken.push(t.workflowId);
      const didFire = await this.driver.withLock(t.workflowId, async () => {
        const state = await this.driver.state(t.workflowId);
        if (!state || state.rec.status !== 'running' || !state.fold.timers.has(t.seq)) {
          await this.deps.store.write([del(t.key)], { sync: false });
          return false;
        }
        faultPoint('timer.before-write');
        await this.driver.append(state, [{ type: 'TimerFired', at: Date.now(), seq: t.seq }], { seen: false });
        faultPoint('timer.after-write');
        return true;
      });
      if (didFire) fired++;
      this.enqueue(t.workflowId);
    }
    if (options.wait !== false) await this.settle(woken);
    return fired;
  }

  private async requireRunning(workflowId: string, what: string) {
    const state = await this.driver.state(workflowId);
    if (!state) throw unknownWorkflow(workflowId);
    if (state.rec.status !== 'running') {
      throw new AionError('not_found', `workflow '${workflowId}' is not running (its last run ${state.rec.status}); nothing to ${what}`, {
        details: { workflow_id: workflowId, run_id: state.rec.run_id, status: state.rec.status },
        hint: `see it with: aion show ${workflowId}`,
      });
    }
    return state;
  }
}

function unknownWorkflow(workflowId: string): AionError {
  return new AionError('not_found', `no workflow with id '${workflowId}'`, {
    details: { workflow_id: workflowId },
    hint: "list runs with 'aion runs'",
  });
}
