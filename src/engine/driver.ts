// The driver: advances one run as far as it can go. A run is event-sourced: every step appends
// its events, the run record and the index delta its state implies (run-state.ts) in one batch.
// The run's workflow code lives in the workflow thread between activations (resident); each
// activation gives it only the events it has not seen, and a run that is not resident there
// (new process, eviction, a dead thread) is replayed from its recorded history on its
// RECORDED version, never re-resolved. Activities run in activity threads.
//
// A step: the engine's own work first (fire due timers, collect children's results, start
// recorded children, run open activities), then one activation with what that produced, then
// one batch with those events and the events of the commands the activation issued. So the
// workflow sees an activity's result before it is written, and both land together; if the batch
// fails, the code's state is dropped (it is ahead of the store) and the run is replayed later.
//
// Locks: one per workflow id, held for a whole advance; no lock of a run is taken while holding
// another's, except a parent starting its child (parent, then child; never the reverse).
// Across processes (a state directory released while code runs), every append re-checks the
// run record when the store may have been written by someone else (Store.epoch), so a stale
// run is reloaded instead of overwriting another process's events.
import { randomUUID } from 'node:crypto';
import { AionError } from '../errors.js';
import { KeyedMutex } from '../concurrency.js';
import { faultPoint } from '../faults.js';
import { escapeText } from '../escape.js';
import { WORKFLOW_ID } from '../ids.js';
import { isInternal, specOf, type VersionEntry, type WorkflowCatalog } from '../catalog/catalog.js';
import { describeSchemaErrors, type SchemaCache } from '../package/schema.js';
import { K } from '../store/keys.js';
import { putJSON, type Store } from '../store/store.js';
import type { BatchOp } from '../store/kv.js';
import type { Activation, ErrorInfo, WorkflowCommand, WorkflowEvent } from '../runtime/history.js';
import type { CodePool, RunInit } from '../runtime/index.js';
import { LiveRuns, type RunState } from './live.js';
import { emptyFold, foldEvent, foldHistory, impliedIndex, indexDelta, type RunRecord } from './run-state.js';
import type { ShutdownGate } from './gate.js';

/** What the run side needs of the engine: nothing more. */
export interface RunDeps {
  store: Store;
  catalog: WorkflowCatalog;
  gate: ShutdownGate;
  live: LiveRuns;
  code: () => Promise<CodeAccess>;
  /** The compiled input/output schemas of loaded versions (ajv imported on first compile). */
  schemas: SchemaCache;
  warn: (message: string) => void;
  /** Whether this process may drive a run now (a shared store leases runs to workers); default yes. */
  mayDrive?: (workflowId: string) => Promise<boolean>;
}

export interface CodeAccess {
  pool: CodePool;
  /** Makes a version runnable here (its archive read and verified, its modules registered); fails `store`. */
  ensure(entry: VersionEntry): Promise<void>;
}

const STEP_LIMIT = 1_000_000;

export function validateWorkflowId(id: string): void {
  if (!WORKFLOW_ID.test(id)) {
    throw new AionError('usage', `invalid workflow id '${id}': use 1 to 200 printable ASCII characters without spaces`, {
      details: { workflow_id: id },
    });
  }
}

/** A write refused because another worker leases the run (engine/lease.ts), maybe wrapped as `store`. */
function isLeaseLost(error: unknown): boolean {
  const e = error as { name?: string; cause?: { name?: string } };
  return e?.name === 'LeaseLost' || e?.cause?.name === 'LeaseLost';
}

/** What the code host needs to run a run of `entry`. */
function runInit(rec: RunRecord, entry: VersionEntry): RunInit {
  const spec = specOf(entry);
  return {
    workflowId: rec.workflow_id,
    runId: rec.run_id,
    workflowType: rec.workflow_type,
    version: rec.version,
    entryModule: spec.entry_module,
    entryFunction: spec.entry_function,
    activities: spec.activities,
  };
}

/** Another process moved the run on since this process last read it. */
class StaleRun extends Error {}

type Ended = Exclude<Activation, { status: 'blocked' }>;

export class Driver {
  private readonly locks = new KeyedMutex();
  /** TimerFired events recorded by this process (serve reports it). */
  timersFired = 0;
  /** The final records of runs that ended here lately, with the store epoch they were written at. */
  private readonly ended = new Map<string, { rec: RunRecord; epoch: number }>();

  forgetEnded(workflowId: string): void {
    this.ended.delete(workflowId);
  }

  /** The record of a run that just ended here, if the store cannot have changed since. */
  endedRecord(workflowId: string): RunRecord | undefined {
    const hit = this.ended.get(workflowId);
    return hit && hit.epoch === this.deps.store.epoch ? hit.rec : undefined;
  }

  constructor(private readonly deps: RunDeps) {}

  /** Runs `fn` holding the lock of one workflow id (see the lock order at the top). */
  withLock<T>(workflowId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(workflowId, fn);
  }

  async getRun(workflowId: string): Promise<RunRecord | undefined> {
    return this.deps.store.getJSON<RunRecord>(K.run(workflowId));
  }

  async readHistory(runId: string): Promise<WorkflowEvent[]> {
    const events: WorkflowEvent[] = [];
    for await (const [, event] of this.deps.store.scanJSON<WorkflowEvent>(K.eventRange(runId))) events.push(event);
    return events;
  }

  /**
   * The state of a workflow's current run: the cached one when it is still current, else read
   * from the store (record, history folded, children's starts looked up). Call under its lock.
   */
  async state(workflowId: string): Promise<RunState | undefined> {
    const { live, store } = this.deps;
    const cached = live.state(workflowId);
    if (cached !== undefined) {
      if (cached.epoch === store.epoch) return cached;
      const rec = await this.getRun(workflowId);
      if (rec && rec.run_id === cached.rec.run_id && rec.events === cached.rec.events) {
        cached.epoch = store.epoch;
        return cached;
      }
      live.forget(workflowId);
    }
    const epoch = store.epoch;
    const rec = await this.getRun(workflowId);
    if (!rec) return undefined;
    const fold = rec.status === 'running' ? foldHistory(await this.readHistory(rec.run_id)) : emptyFold();
    const open = [...fold.children.values()];
    if (open.length > 0) {
      const children = await store.getManyJSON<RunRecord>(open.map((c) => K.run(c.childId)));
      open.forEach((c, i) => (c.started = children[i]?.parent?.run_id === rec.run_id));
    }
    const state: RunState = { rec, fold, pending: [], epoch, deaths: 0 };
    if (rec.status === 'running') live.keep(workflowId, state);
    return state;
  }

  /**
   * Appends events to the run (with the index delta they imply and `extra` ops) in one batch,
   * and updates the state. `seen`: the workflow code has already been given these events.
   * Fails `store` (nothing written), or StaleRun when another process wrote the run meanwhile.
   */
  async append(state: RunState, events: WorkflowEvent[], options: { seen: boolean; patch?: Partial<RunRecord>; extra?: BatchOp[]; sync?: boolean } = { seen: false }): Promise<void> {
    const { store } = this.deps;
    const rec = state.rec;
    const next: RunRecord = { ...rec, ...options.patch, events: rec.events + events.length, updated_at: new Date().toISOString() };
    const before = impliedIndex(rec, state.fold);
    for (const event of events) foldEvent(state.fold, event);
    const after = impliedIndex(next, state.fold);
    const batch: BatchOp[] = events.map((e, i) => putJSON(K.event(rec.run_id, rec.events + i), e));
    batch.push(putJSON(K.run(rec.workflow_id), next), ...indexDelta(before, after), ...(options.extra ?? []));
    try {
      await store.hold(async () => {
        if (state.epoch !== store.epoch) {
          const stored = await this.getRun(rec.workflow_id);
          if (!stored || stored.run_id !== rec.run_id || stored.events !== rec.events) throw new StaleRun(`run ${rec.workflow_id} was changed by another process`);
          state.epoch = store.epoch;
        }
        await store.write(batch, { sync: options.sync ?? false });
      });
    } catch (error) {
      // The fold (and maybe the code) is ahead of the store now: start over from the store.
      this.forget(rec.workflow_id, rec.run_id);
      throw error;
    }
    state.rec = next;
    for (const event of events) if (event.type === 'TimerFired') this.timersFired++;
    if (!options.seen) state.pending.push(...events);
    else state.complete = false;
  }

  /** Drops a run's cached state and its code slot. */
  forget(workflowId: string, runId: string): void {
    this.deps.live.forget(workflowId);
    void this.deps.code().then((c) => c.pool.dropRun(runId), () => undefined);
  }

  /**
   * Batch ops that start a run (record, WorkflowStarted, and what its state implies); with its
   * record. `seed` (after the ops landed) makes the new run's state known here whole. With
   * `early`, the run's first activation begins now, so that the workflow thread computes its
   * first commands while the caller checks for a conflict and writes the start (the code has no
   * effects: nothing it asks for happens before the batch that records it lands); a caller that
   * does not write the start calls `discard`. Not on a shared store, where another worker may
   * be the one to drive the run.
   */
  startBatch(
    workflowId: string,
    runId: string,
    entry: VersionEntry,
    input: unknown,
    parent: RunRecord['parent'],
    continuedFrom?: string,
    early?: CodeAccess,
  ): { ops: BatchOp[]; rec: RunRecord; seed: () => void; discard: () => void } {
    const at = Date.now();
    const started: WorkflowEvent = {
      type: 'WorkflowStarted',
      at,
      workflow_id: workflowId,
      run_id: runId,
      workflow_type: entry.workflowType,
      package_version: entry.version,
      input: input ?? null,
      ...(parent ? { parent } : {}),
      ...(continuedFrom ? { continued_from: continuedFrom } : {}),
    };
    const iso = new Date(at).toISOString();
    const rec: RunRecord = {
      workflow_id: workflowId,
      run_id: runId,
      workflow_type: entry.workflowType,
      version: entry.version,
      status: 'running',
      started_at: iso,
      updated_at: iso,
      result: null,
      error: null,
      parent,
      events: 1,
    };
    const ops = [putJSON(K.event(runId, 0), started), putJSON(K.run(workflowId), rec), ...indexDelta(new Map(), impliedIndex(rec, emptyFold()))];
    const first = early && !this.deps.mayDrive ? early.pool.activate(runId, runInit(rec, entry), [started]) : undefined;
    first?.catch(() => undefined); // its failure is the first step's to report (a closed pool)
    // Once written: the new run's state is known whole, so its first step reads nothing back.
    const seed = () => this.deps.live.keep(workflowId, { rec, fold: emptyFold(), pending: [started], epoch: this.deps.store.epoch, deaths: 0, complete: true, first });
    // Not written: whatever the early activation left resident goes.
    const discard = () => void first?.then(() => early!.pool.dropRun(runId), () => undefined);
    return { ops, rec, seed, discard };
  }

  /** A loaded (type, version), waiting out an unload's swap-out window (it may be restored). */
  private async settledEntry(workflowType: string, version: string): Promise<VersionEntry | undefined> {
    const { catalog } = this.deps;
    const entry = catalog.get(workflowType, version);
    if (entry) return entry;
    const release = await catalog.beginMutation();
    release();
    return catalog.get(workflowType, version);
  }

  /** Resolves a recorded (type, version); waits out an unload's swap-out window. Fails `not_found`. */
  async recordedVersion(workflowType: string, version: string): Promise<VersionEntry> {
    const entry = await this.settledEntry(workflowType, version);
    if (!entry) {
      throw new AionError('not_found', `version ${version.slice(0, 12)} of '${workflowType}' is not loaded, so its runs cannot be recovered`, {
        details: { workflow_type: workflowType, version },
        hint: 'load the archive of that version again',
      });
    }
    return entry;
  }

  /**
   * Advances one workflow's current run as far as it can go; returns the workflow ids it woke
   * (children it started, its parent when it ended, itself after continue-as-new). A run whose
   * recorded version is not loaded fails its own recovery (typed `not_found`), never others'.
   */
  async advance(workflowId: string): Promise<string[]> {
    const wake: string[] = [];
    const { live } = this.deps;
    await this.withLock(workflowId, async () => {
      let state: RunState | undefined;
      try {
        // Another worker leases it: it is that worker's to drive.
        if (this.deps.mayDrive && !(await this.deps.mayDrive(workflowId))) {
          live.forget(workflowId);
          return;
        }
        for (let step = 0; step < STEP_LIMIT; step++) {
          state = await this.state(workflowId);
          if (!state || state.rec.status !== 'running') return;
          const rec = state.rec;
          live.mark({ workflowId, runId: rec.run_id, workflowType: rec.workflow_type, version: rec.version });
          const entry = await this.recordedVersion(rec.workflow_type, rec.version);
          const code = await this.deps.code();
          await code.ensure(entry);
          const more = await this.step(state, entry, code, wake);
          if (!more) return;
        }
        throw new AionError('internal', `run ${workflowId} made more than ${STEP_LIMIT} steps in one go`);
      } catch (error) {
        if (error instanceof StaleRun) {
          wake.push(workflowId); // reloaded and advanced again by the caller's loop
          return;
        }
        // Taken over by another worker (this one's lease ran out): it carries on from the store.
        if (isLeaseLost(error)) return;
        throw error;
      } finally {
        const current = live.state(workflowId);
        if (!live.serving || !current || current.rec.status !== 'running') live.unmark(workflowId);
      }
    });
    return wake;
  }

  /** One step; returns whether the run may go further right away. */
  private async step(state: RunState, entry: VersionEntry, code: CodeAccess, wake: string[]): Promise<boolean> {
    const rec = state.rec;
    const produced: WorkflowEvent[] = [];
    const pool = code.pool;
    const resident = pool.isResident(rec.run_id);
    const now = Date.now();

    for (const [seq, fireAt] of state.fold.timers) {
      if (fireAt <= now) produced.push({ type: 'TimerFired', at: now, seq });
    }
    for (const [seq, child] of state.fold.children) {
      if (!child.started) {
        const childEntry = await this.recordedVersion(child.workflowType, child.version);
        const failure = await this.startChild(state, seq, child, childEntry);
        if (failure) produced.push(failure);
        else wake.push(child.childId);
        continue;
      }
      const childRec = await this.getRun(child.childId);
      if (!childRec || childRec.parent?.run_id !== rec.run_id) continue;
      if (childRec.status === 'completed') produced.push({ type: 'ChildWorkflowCompleted', at: now, seq, result: childRec.result });
      else if (childRec.status === 'failed' || childRec.status === 'terminated') {
        const why = childRec.status === 'terminated' ? `child ${childRec.workflow_id} was terminated: ${childRec.error?.message ?? ''}` : (childRec.error?.message ?? 'child failed');
        produced.push({ type: 'ChildWorkflowFailed', at: now, seq, error: { message: why, name: childRec.error?.name } });
      }
    }

    if (produced.length === 0 && state.pending.length === 0 && resident) {
      // Nothing new for the code: the run waits for its activities, or for the world.
      if (state.fold.activities.size === 0) return false;
      const limit = await this.runActivities(state, entry, code, produced);
      if (limit) {
        await this.end(state, produced, { status: 'failed', commands: [], error: limit }, wake);
        return false;
      }
    }

    // Activate: only what the code has not seen, or its whole history when it is not resident.
    const events = resident || state.complete ? [...state.pending, ...produced] : [...(await this.readHistory(rec.run_id)), ...produced];
    state.complete = false;
    if (resident && events.length === 0) return false;
    // The first activation, begun with the start (startBatch), is this one when nothing came
    // since; else it is dropped and this one replays from WorkflowStarted.
    const first = state.first;
    state.first = undefined;
    const early = first !== undefined && events.length === 1 && events[0]!.type === 'WorkflowStarted';
    if (first !== undefined && !early) await first.then(() => pool.dropRun(rec.run_id), () => undefined);
    // A run whose thread died under it is replayed alone, in a thread of its own: a limit it
    // hits there is its own (in the shared thread a neighbour's growth or stall may have been).
    const isolated = state.deaths > 0;
    const result = early ? await first! : await pool.activate(rec.run_id, runInit(rec, entry), events, { isolated });
    state.pending = [];
    if ('lost' in result) {
      if (state.deaths++ === 0) return true;
      const { limitError } = await import('../runtime/pool.js');
      const bound = result.lost === 'time' ? pool.limits.activationTimeoutMs : pool.limits.workflowMemoryMb;
      await this.end(state, produced, { status: 'failed', commands: [], error: limitError(result.lost, 'workflow code', bound) }, wake);
      return false;
    }
    state.deaths = 0;
    const activation = result.activation;
    if (activation.status !== 'blocked') {
      await this.end(state, produced, activation, wake);
      return false;
    }
    if (activation.commands.length === 0 && produced.length === 0) {
      return state.fold.activities.size > 0;
    }
    const failure = await this.recordCommands(state, produced, activation.commands);
    if (failure) {
      await this.end(state, [], failure, wake);
      return false;
    }
    return true;
  }

  /** Runs every open activity concurrently; their outcomes become events. Returns a limit error that ends the run. */
  private async runActivities(state: RunState, entry: VersionEntry, code: CodeAccess, produced: WorkflowEvent[]): Promise<ErrorInfo | undefined> {
    const open = [...state.fold.activities];
    const spec = specOf(entry);
    const timeoutMs = spec.timeout_seconds * 1000;
    const outcomes = await Promise.all(
      open.map(([, call]) =>
        code.pool.runActivity(entry.version, spec.entry_module, call.name, call.input, timeoutMs, (level, text) => process.stderr.write(`[activity ${call.name}] ${level}: ${escapeText(text)}\n`)),
      ),
    );
    let limit: ErrorInfo | undefined;
    open.forEach(([seq], i) => {
      const outcome = outcomes[i]!;
      const at = Date.now();
      if (outcome.ok) produced.push({ type: 'ActivityCompleted', at, seq, result: outcome.value ?? null });
      else {
        produced.push({ type: 'ActivityFailed', at, seq, error: outcome.error });
        if (outcome.error.code === 'resource_exhausted') limit ??= outcome.error;
      }
    });
    faultPoint('activity.before-write');
    return limit;
  }

  /**
   * Records what an activation asked for, with the events that produced it, in one batch.
   * Exhaustive over commands: adding a ctx API is one case here (and one in the code host).
   * A child takes the version routed NOW, under a start pin held until its record lands.
   * Returns a failure that ends the run (a child of a type that has no loaded version).
   */
  private async recordCommands(state: RunState, produced: WorkflowEvent[], commands: WorkflowCommand[]): Promise<Ended | undefined> {
    const now = Date.now();
    const rec = state.rec;
    const events: WorkflowEvent[] = [];
    const pins: { release(): void }[] = [];
    try {
      for (const cmd of commands) {
        switch (cmd.type) {
          case 'ScheduleActivity':
            events.push({ type: 'ActivityScheduled', at: now, seq: cmd.seq, name: cmd.name, input: cmd.input ?? null });
            break;
          case 'StartTimer':
            events.push({ type: 'TimerStarted', at: now, seq: cmd.seq, seconds: cmd.seconds, fire_at: now + Math.round(cmd.seconds * 1000) });
            break;
          case 'StartChild': {
            const childId = cmd.workflow_id ?? `${rec.workflow_id}/child-${cmd.seq}`;
            if (!WORKFLOW_ID.test(childId)) {
              return { status: 'failed', commands: [], error: { message: `cannot start a child with workflow id '${childId}': use 1 to 200 printable ASCII characters without spaces`, name: 'ChildStartError' } };
            }
            let pin;
            try {
              // An internal type of the parent's own package starts on the parent's version;
              // any other type on its routed (or ramping) version, as every start does.
              const sibling = await this.internalSibling(rec, cmd.workflow_type);
              pin = sibling ? this.deps.catalog.pin(sibling) : this.deps.catalog.pinStart(cmd.workflow_type, childId);
            } catch (error) {
              const internal = error instanceof AionError && error.details.internal === true;
              return { status: 'failed', commands: [], error: { message: internal ? `cannot start a child of type '${cmd.workflow_type}': it is internal to another package` : `cannot start a child of type '${cmd.workflow_type}': no version of it is loaded`, name: 'ChildStartError' } };
            }
            pins.push(pin);
            events.push({ type: 'ChildWorkflowStarted', at: now, seq: cmd.seq, child_workflow_id: childId, workflow_type: cmd.workflow_type, package_version: pin.entry.version, input: cmd.input ?? null });
            break;
          }
          default: {
            const never: never = cmd;
            throw new Error(`unknown workflow command ${JSON.stringify(never)}`);
          }
        }
      }
      faultPoint(produced.length > 0 ? 'step.before-write' : 'record.before-write');
      const after = produced.length > 0 ? 'step.after-write' : 'record.after-write';
      // Awaited before anything else happens: an activity starts only once the step that
      // scheduled it (and the result before it) has landed, so a crash never redoes a step
      // that a later one followed. A child's version stays pinned until its record lands.
      await this.append(state, [...produced, ...events], { seen: true });
      faultPoint(after);
      return undefined;
    } finally {
      for (const pin of pins) pin.release();
    }
  }

  /**
   * The entry of `childType` at the parent's own version when it is an internal type of the
   * parent's package (the same manifest), else undefined. Waits out an unload's swap-out.
   */
  private async internalSibling(parent: RunRecord, childType: string): Promise<VersionEntry | undefined> {
    const own = await this.settledEntry(parent.workflow_type, parent.version);
    const sibling = this.deps.catalog.get(childType, parent.version);
    return own && sibling && sibling.manifestDigest === own.manifestDigest && isInternal(sibling) ? sibling : undefined;
  }

  /** Starts a recorded child on its recorded version; its recorded-child pin becomes a run pin. */
  private async startChild(parent: RunState, seq: number, child: RunState['fold']['children'] extends Map<number, infer C> ? C : never, entry: VersionEntry): Promise<WorkflowEvent | undefined> {
    return this.withLock(child.childId, async () => {
      const existing = await this.getRun(child.childId);
      if (existing && existing.status === 'running') {
        child.started = true; // never will be by this parent: its pin goes with the failure below
        return { type: 'ChildWorkflowFailed', at: Date.now(), seq, error: { message: `workflow '${child.childId}' is already running` } };
      }
      const pin = this.deps.catalog.pin(entry);
      try {
        const { ops, seed } = this.startBatch(child.childId, randomUUID(), entry, child.input, { workflow_id: parent.rec.workflow_id, run_id: parent.rec.run_id, seq }, undefined);
        const before = impliedIndex(parent.rec, parent.fold);
        child.started = true;
        ops.push(...indexDelta(before, impliedIndex(parent.rec, parent.fold)));
        faultPoint('child-start.before-write');
        try {
          await this.deps.store.write(ops, { sync: false });
        } catch (error) {
          child.started = false;
          throw error;
        }
        faultPoint('child-start.after-write');
        this.deps.live.forget(child.childId);
        seed();
        return undefined;
      } finally {
        pin.release();
      }
    });
  }

  /** The failure of a completed run's output against its type's output schema, if it breaks it. */
  private async outputProblem(rec: RunRecord, result: unknown): Promise<ErrorInfo | undefined> {
    const entry = this.deps.catalog.get(rec.workflow_type, rec.version);
    const validate = entry && this.deps.schemas.validator(entry.version, entry.manifest, entry.workflowType, 'output');
    if (!validate) return undefined;
    const errors = (await validate)(result ?? null);
    if (errors.length === 0) return undefined;
    return {
      message: `the output does not match the output schema of '${rec.workflow_type}': ${describeSchemaErrors(errors)}`,
      name: 'OutputSchemaError',
      code: 'output_schema',
      schema_errors: errors,
    };
  }

  /** Ends the current run: completed, failed, or continued as new on the routed version. */
  async end(state: RunState, produced: WorkflowEvent[], ending: Ended, wake: string[]): Promise<void> {
    const rec = state.rec;
    if (ending.status === 'completed') {
      // Output that breaks its type's output schema fails the run (`output_schema`).
      const broken = await this.outputProblem(rec, ending.result);
      if (broken) ending = { status: 'failed', commands: [], error: broken };
    }
    const at = Date.now();
    faultPoint('finish.before-write');
    if (ending.status === 'completed') {
      await this.append(state, [...produced, { type: 'WorkflowCompleted', at, result: ending.result ?? null }], { seen: true, patch: { status: 'completed', result: ending.result ?? null } });
    } else if (ending.status === 'failed') {
      await this.append(state, [...produced, { type: 'WorkflowFailed', at, error: ending.error }], { seen: true, patch: { status: 'failed', error: ending.error } });
    } else {
      // The successor takes the version routed now, under an in-flight pin until its
      // WorkflowStarted is written in the same batch that ends this run.
      const pin = this.deps.catalog.pinStart(rec.workflow_type, rec.workflow_id);
      try {
        const nextRunId = randomUUID();
        const { ops, seed } = this.startBatch(rec.workflow_id, nextRunId, pin.entry, ending.input, rec.parent, rec.run_id);
        // The successor's record replaces this one's: only its history and index entries stay.
        const extra = ops.filter((op) => op.key !== K.run(rec.workflow_id));
        const closing: WorkflowEvent = { type: 'WorkflowContinuedAsNew', at, input: ending.input ?? null, next_run_id: nextRunId };
        await this.append(state, [...produced, closing], { seen: true, patch: { status: 'continued_as_new' }, extra: [...extra, ops.find((op) => op.key === K.run(rec.workflow_id))!] });
        this.forget(rec.workflow_id, rec.run_id);
        seed();
      } finally {
        pin.release();
      }
      wake.push(rec.workflow_id);
    }
    faultPoint('finish.after-write');
    if (ending.status !== 'continued_as_new') {
      this.forget(rec.workflow_id, rec.run_id);
      this.deps.live.unmark(rec.workflow_id);
      this.ended.delete(rec.workflow_id);
      this.ended.set(rec.workflow_id, { rec: state.rec, epoch: state.epoch });
      if (this.ended.size > 256) this.ended.delete(this.ended.keys().next().value as string);
    }
    if (rec.parent) wake.push(rec.parent.workflow_id);
  }
}
