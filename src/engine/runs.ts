// Run lifecycle: start, drive, signal, terminate, recover. A run's progress is event-sourced in
// the state directory: every step appends events in one batch together with the index changes
// it implies (active set, pin index, timers). Driving a run means replaying its history on its
// RECORDED version (never re-resolving) until the workflow can go no further, carrying out the
// commands it emits on the way. Per-workflow-id locks serialize appends to one history; no
// lock of a run is ever held while taking another's.
import { randomUUID } from 'node:crypto';
import { AionError } from '../errors.js';
import { Mutex } from '../concurrency.js';
import { faultPoint } from '../faults.js';
import type { VersionEntry } from '../catalog/catalog.js';
import { K } from '../store/keys.js';
import { del, putJSON } from '../store/store.js';
import { pinOps } from '../store/pins.js';
import type { BatchOp } from '../store/kv.js';
import type { Activation, ErrorInfo, WorkflowCommand, WorkflowEvent } from '../runtime/history.js';
import type { Engine } from './engine.js';
import type { RunDetail, RunSummary, SignalOutcome, StartOutcome } from './types.js';

/** The current run of a workflow id (`run/<workflow_id>`). */
export interface RunRecord extends RunSummary {
  result: unknown;
  error: ErrorInfo | null;
  /** Set for a child run: where its result goes. Kept across continue-as-new. */
  parent: { workflow_id: string; run_id: string; seq: number } | null;
  /** Number of events in the current run's history. */
  events: number;
}

export interface RunFilter {
  type?: string;
  version?: string;
  status?: string;
}

const WORKFLOW_ID = /^[\x21-\x7e]{1,200}$/;
const STEP_LIMIT = 10_000;

export function validateWorkflowId(id: string): void {
  if (!WORKFLOW_ID.test(id)) {
    throw new AionError('usage', `invalid workflow id '${id}': use 1 to 200 printable ASCII characters without spaces`);
  }
}

export class RunManager {
  private readonly locks = new Map<string, Mutex>();
  /** The drive task of each workflow being advanced in this process. */
  private readonly tasks = new Map<string, Promise<void>>();
  /** Workflows asked to advance again while their task was running. */
  private readonly again = new Set<string>();
  /** Waiters' groups of workflow ids: a run woken by one in a group joins the group. */
  private readonly watchers = new Map<string, Set<Set<string>>>();
  /** Set by `aion serve`: every active run it recovers is resident (a live run). */
  residentAll = false;
  /** Called whenever a drive task ends (the serving loop looks at timers again). */
  onTaskDone: (() => void) | undefined;

  constructor(private readonly engine: Engine) {}

  private lockOf(workflowId: string): Mutex {
    let lock = this.locks.get(workflowId);
    if (!lock) this.locks.set(workflowId, (lock = new Mutex()));
    return lock;
  }

  async getRun(workflowId: string): Promise<RunRecord | undefined> {
    return this.engine.store.getJSON<RunRecord>(K.run(workflowId));
  }

  async readHistory(runId: string): Promise<WorkflowEvent[]> {
    const events: WorkflowEvent[] = [];
    for await (const [, event] of this.engine.store.scanJSON<WorkflowEvent>(K.eventRange(runId))) events.push(event);
    return events;
  }

  // --- commands ------------------------------------------------------------------------------

  /**
   * Starts a run on the routed version of its type. The version is resolved under an
   * in-flight start pin held until the WorkflowStarted event (with its run pin) is durably
   * recorded. Then drives the run in this process until it completes or waits.
   * Failures: `not_found` (type not loaded), `conflict` (id already running), `usage`,
   * `shutting_down`, `store`.
   */
  async start(workflowType: string, input: unknown, options: { workflowId?: string } = {}): Promise<StartOutcome> {
    const end = this.engine.gate.begin('start');
    let workflowId: string;
    let runId: string;
    let version: string;
    try {
      workflowId = options.workflowId ?? `${workflowType}-${randomUUID().slice(0, 8)}`;
      validateWorkflowId(workflowId);
      const pin = this.engine.catalog.pinStart(workflowType, workflowId);
      try {
        version = pin.entry.version;
        runId = await this.lockOf(workflowId).run(async () => {
          const existing = await this.getRun(workflowId);
          if (existing && existing.status === 'running') {
            throw new AionError('conflict', `workflow '${workflowId}' is already running (run ${existing.run_id} on version ${existing.version.slice(0, 12)})`, {
              details: { workflow_id: workflowId, run_id: existing.run_id },
              hint: `pick another --id, or wait for it to finish (aion show ${workflowId})`,
            });
          }
          const id = randomUUID();
          faultPoint('start.before-write');
          await this.engine.store.write(this.startOps(workflowId, id, pin.entry, input, null, undefined), { sync: false });
          faultPoint('start.after-write');
          return id;
        });
      } finally {
        pin.release();
      }
      this.enqueue(workflowId);
    } finally {
      end();
    }
    await this.settle([workflowId]);
    const rec = await this.getRun(workflowId);
    return {
      workflow_id: workflowId,
      run_id: runId,
      workflow_type: workflowType,
      version,
      status: rec?.run_id === runId ? rec.status : 'continued_as_new',
    };
  }

  /** Delivers a signal to a workflow's current run and drives it. Fails `not_found` if not running. */
  async signal(workflowId: string, name: string, input: unknown): Promise<SignalOutcome> {
    const end = this.engine.gate.begin('signal');
    let runId: string;
    try {
      runId = await this.lockOf(workflowId).run(async () => {
        const rec = await this.requireRunning(workflowId, 'signal');
        faultPoint('signal.before-write');
        await this.append(rec, [{ type: 'SignalReceived', at: Date.now(), name, input }], []);
        faultPoint('signal.after-write');
        return rec.run_id;
      });
      this.enqueue(workflowId);
    } finally {
      end();
    }
    await this.settle([workflowId]);
    const rec = await this.getRun(workflowId);
    return { workflow_id: workflowId, run_id: rec?.run_id ?? runId, status: rec?.status ?? 'running' };
  }

  /** Ends a running workflow's current run as terminated. Fails `not_found` if not running. */
  async terminate(workflowId: string, reason: string): Promise<SignalOutcome> {
    const end = this.engine.gate.begin('terminate');
    try {
      const rec = await this.lockOf(workflowId).run(async () => {
        const current = await this.requireRunning(workflowId, 'terminate');
        const history = await this.readHistory(current.run_id);
        const ops = this.endOps(current, history);
        faultPoint('terminate.before-write');
        await this.append(current, [{ type: 'WorkflowTerminated', at: Date.now(), reason }], ops, { status: 'terminated', error: { message: reason } });
        faultPoint('terminate.after-write');
        return current;
      });
      if (rec.parent) {
        this.enqueue(rec.parent.workflow_id);
        await this.settle([rec.parent.workflow_id]);
      }
      return { workflow_id: workflowId, run_id: rec.run_id, status: 'terminated' };
    } finally {
      end();
    }
  }

  async list(filter: RunFilter = {}): Promise<RunSummary[]> {
    const runs: RunSummary[] = [];
    for await (const [, rec] of this.engine.store.scanJSON<RunRecord>(K.runRange(), (k) => this.engine.warn(`skipping corrupt run record ${k.replace(/\x00/g, '/')}`))) {
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

  /**
   * Asks for a workflow to be advanced. Each workflow has at most one drive task at a time;
   * different workflows advance concurrently, so a slow activity of one run never delays
   * another run's start, signal or timer. Never throws: failures become warnings.
   */
  enqueue(workflowId: string): void {
    if (this.tasks.has(workflowId)) {
      this.again.add(workflowId);
      return;
    }
    const task = (async () => {
      do {
        this.again.delete(workflowId);
        try {
          const woken = await this.advance(workflowId);
          for (const id of woken) {
            for (const group of this.watchers.get(workflowId) ?? []) this.watch(id, group);
            this.enqueue(id);
          }
        } catch (error) {
          this.engine.warn(`run ${workflowId} could not progress: ${(error as Error).message}`);
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
    for await (const k of this.engine.store.keys(K.activeRange())) ids.push(k.slice(K.activeRange().gt.length));
    for (const id of ids) {
      if (this.residentAll) await this.markResident(id);
      this.enqueue(id);
    }
    if (options.wait !== false) await this.settle(ids);
    return ids.length;
  }

  private async markResident(workflowId: string): Promise<void> {
    const rec = await this.getRun(workflowId);
    if (rec && rec.status === 'running') {
      this.engine.resident.set(workflowId, { workflowId, runId: rec.run_id, workflowType: rec.workflow_type, version: rec.version });
    }
  }

  /** The fire time (ms) of the earliest pending timer, if any. */
  async nextTimerAt(): Promise<number | undefined> {
    for await (const k of this.engine.store.keys({ ...K.timerRange(), limit: 1 })) {
      return Number(k.split('\x00')[1]);
    }
    return undefined;
  }

  /**
   * Fires every timer due by `now` and advances the runs they wake; returns how many fired.
   * A timer of a run that is busy right now (say, in a long activity) is left to that run's
   * own drive task, which fires due timers when it looks at its history; with `wait: false`
   * the call returns without waiting for the woken runs.
   */
  async fireDueTimers(now = Date.now(), options: { wait?: boolean } = {}): Promise<number> {
    const due: { key: string; workflowId: string; seq: number }[] = [];
    for await (const k of this.engine.store.keys(K.timersDueBy(now))) {
      const [, , workflowId, seq] = k.split('\x00');
      due.push({ key: k, workflowId: workflowId!, seq: Number(seq) });
    }
    const woken: string[] = [];
    let fired = 0;
    for (const t of due) {
      if (options.wait === false && this.tasks.has(t.workflowId)) {
        this.enqueue(t.workflowId);
        continue;
      }
      fired++;
      woken.push(t.workflowId);
      await this.lockOf(t.workflowId).run(async () => {
        const rec = await this.getRun(t.workflowId);
        if (!rec || rec.status !== 'running') {
          await this.engine.store.write([del(t.key)], { sync: false });
          return;
        }
        faultPoint('timer.before-write');
        await this.append(rec, [{ type: 'TimerFired', at: Date.now(), seq: t.seq }], [del(t.key)]);
        faultPoint('timer.after-write');
      });
      this.enqueue(t.workflowId);
    }
    if (options.wait !== false) await this.settle(woken);
    return fired;
  }

  /**
   * Advances one workflow's current run as far as it can go. A run whose recorded version is
   * not loaded fails its own recovery (typed `not_found` naming the version), never others'.
   */
  private async advance(workflowId: string): Promise<string[]> {
    const wake: string[] = [];
    await this.lockOf(workflowId).run(async () => {
      for (let step = 0; step < STEP_LIMIT; step++) {
        const rec = await this.getRun(workflowId);
        if (!rec || rec.status !== 'running') return;
        const entry = await this.recordedVersion(rec.workflow_type, rec.version);
        const { api, registry } = await this.engine.materialize(entry);
        // Driven here, so a live run of this process until it ends or (one-shot) we let go.
        this.engine.resident.set(workflowId, { workflowId, runId: rec.run_id, workflowType: rec.workflow_type, version: rec.version });
        const history = await this.readHistory(rec.run_id);

        // Work the history already asks for: fire due timers, collect finished children,
        // start recorded children, (re-)run activities without a result.
        if (await this.catchUp(rec, entry, history, wake)) continue;

        let activation: Activation;
        try {
          activation = api.replay(registry, rec.version, {
            workflowId: rec.workflow_id,
            runId: rec.run_id,
            workflowType: rec.workflow_type,
            entryModule: entry.manifest.entry_module,
            entryFunction: entry.entryFunction,
            activities: entry.manifest.activities,
          }, history, {});
        } catch (error) {
          activation = { status: 'failed', commands: [], error: { message: (error as Error).message, name: (error as Error).name } };
        }
        if (activation.status === 'blocked') {
          if (activation.commands.length === 0) return;
          await this.recordCommands(rec, activation.commands);
          continue;
        }
        faultPoint('finish.before-write');
        await this.finish(rec, history, activation);
        faultPoint('finish.after-write');
        if (rec.parent) wake.push(rec.parent.workflow_id);
        if (activation.status === 'continued_as_new') wake.push(workflowId);
        return;
      }
      throw new AionError('internal', `run ${workflowId} made more than ${STEP_LIMIT} steps in one go`);
    }).finally(async () => {
      const rec = this.residentAll ? await this.getRun(workflowId).catch(() => undefined) : undefined;
      if (rec && rec.status === 'running') {
        this.engine.resident.set(workflowId, { workflowId, runId: rec.run_id, workflowType: rec.workflow_type, version: rec.version });
      } else {
        this.engine.resident.delete(workflowId);
      }
    });
    return wake;
  }

  /** Resolves a recorded (type, version); waits out an unload's swap-out window. */
  private async recordedVersion(workflowType: string, version: string): Promise<VersionEntry> {
    let entry = this.engine.catalog.get(workflowType, version);
    if (!entry) {
      const release = await this.engine.catalog.beginMutation();
      release();
      entry = this.engine.catalog.get(workflowType, version);
    }
    if (!entry) {
      throw new AionError('not_found', `version ${version.slice(0, 12)} of '${workflowType}' is not loaded, so its runs cannot be recovered`, {
        details: { workflow_type: workflowType, version },
        hint: 'load the archive of that version again',
      });
    }
    return entry;
  }

  /** One step of catching up with recorded work; returns whether it changed anything. */
  private async catchUp(rec: RunRecord, entry: VersionEntry, history: WorkflowEvent[], wake: string[]): Promise<boolean> {
    const now = Date.now();
    const firedTimers = new Set<number>();
    const resolvedActivities = new Set<number>();
    const resolvedChildren = new Set<number>();
    for (const e of history) {
      if (e.type === 'TimerFired') firedTimers.add(e.seq);
      else if (e.type === 'ActivityCompleted' || e.type === 'ActivityFailed') resolvedActivities.add(e.seq);
      else if (e.type === 'ChildWorkflowCompleted' || e.type === 'ChildWorkflowFailed') resolvedChildren.add(e.seq);
    }
    for (const e of history) {
      if (e.type === 'TimerStarted' && !firedTimers.has(e.seq) && e.fire_at <= now) {
        faultPoint('timer.before-write');
        await this.append(rec, [{ type: 'TimerFired', at: now, seq: e.seq }], [del(K.timer(e.fire_at, rec.workflow_id, e.seq))]);
        faultPoint('timer.after-write');
        return true;
      }
      if (e.type === 'ChildWorkflowStarted' && !resolvedChildren.has(e.seq)) {
        const child = await this.getRun(e.child_workflow_id);
        if (!child || child.parent?.run_id !== rec.run_id) {
          // Recorded but never started: start it on its RECORDED version.
          const childEntry = await this.recordedVersion(e.workflow_type, e.package_version);
          await this.startChild(rec, e, childEntry);
          wake.push(e.child_workflow_id);
          return true;
        }
        if (child.status === 'completed') {
          faultPoint('child-result.before-write');
          await this.append(rec, [{ type: 'ChildWorkflowCompleted', at: now, seq: e.seq, result: child.result }], []);
          faultPoint('child-result.after-write');
          return true;
        }
        if (child.status === 'failed' || child.status === 'terminated') {
          const why = child.status === 'terminated' ? `child ${child.workflow_id} was terminated: ${child.error?.message ?? ''}` : (child.error?.message ?? 'child failed');
          faultPoint('child-result.before-write');
          await this.append(rec, [{ type: 'ChildWorkflowFailed', at: now, seq: e.seq, error: { message: why, name: child.error?.name } }], []);
          faultPoint('child-result.after-write');
          return true;
        }
      }
      if (e.type === 'ActivityScheduled' && !resolvedActivities.has(e.seq)) {
        await this.runActivity(rec, entry, e.seq, e.name, e.input);
        return true;
      }
    }
    return false;
  }

  private async runActivity(rec: RunRecord, entry: VersionEntry, seq: number, name: string, input: unknown): Promise<void> {
    const { api, registry } = await this.engine.materialize(entry);
    let event: WorkflowEvent;
    try {
      const result = await api.runActivity(registry, rec.version, entry.manifest.entry_module, name, input, {
        timeoutMs: entry.manifest.timeout_seconds * 1000,
      });
      event = { type: 'ActivityCompleted', at: Date.now(), seq, result: result ?? null };
    } catch (error) {
      event = { type: 'ActivityFailed', at: Date.now(), seq, error: { message: (error as Error).message, name: (error as Error).name } };
    }
    faultPoint('activity.before-write');
    await this.append(rec, [event], []);
    faultPoint('activity.after-write');
  }

  /** Records what an activation asked for: activities, timers, children (record-then-start). */
  private async recordCommands(rec: RunRecord, commands: WorkflowCommand[]): Promise<void> {
    const now = Date.now();
    const events: WorkflowEvent[] = [];
    const ops: BatchOp[] = [];
    for (const cmd of commands) {
      if (cmd.type === 'ScheduleActivity') {
        events.push({ type: 'ActivityScheduled', at: now, seq: cmd.seq, name: cmd.name, input: cmd.input ?? null });
      } else if (cmd.type === 'StartTimer') {
        const fireAt = now + Math.round(cmd.seconds * 1000);
        events.push({ type: 'TimerStarted', at: now, seq: cmd.seq, seconds: cmd.seconds, fire_at: fireAt });
        ops.push(putJSON(K.timer(fireAt, rec.workflow_id, cmd.seq), { run_id: rec.run_id }));
      } else {
        // The child takes the version routed NOW (or ramping, by its id), recorded with it; it
        // pins that version until its own WorkflowStarted is written.
        const childId = cmd.workflow_id ?? `${rec.workflow_id}/child-${cmd.seq}`;
        const routed = this.engine.catalog.startEntry(cmd.workflow_type, childId);
        if (!routed) {
          await this.finish(rec, await this.readHistory(rec.run_id), {
            status: 'failed',
            commands: [],
            error: { message: `cannot start a child of type '${cmd.workflow_type}': no version of it is loaded`, name: 'ChildStartError' },
          });
          return;
        }
        events.push({
          type: 'ChildWorkflowStarted',
          at: now,
          seq: cmd.seq,
          child_workflow_id: childId,
          workflow_type: cmd.workflow_type,
          package_version: routed.version,
          input: cmd.input ?? null,
        });
        ops.push(pinOps.addChild(cmd.workflow_type, routed.version, childId, rec.workflow_id));
      }
    }
    faultPoint('record.before-write');
    await this.append(rec, events, ops);
    faultPoint('record.after-write');
  }

  /** Starts a recorded child on its recorded version; its recorded-child pin becomes a run pin. */
  private async startChild(parent: RunRecord, e: Extract<WorkflowEvent, { type: 'ChildWorkflowStarted' }>, entry: VersionEntry): Promise<void> {
    await this.lockOf(e.child_workflow_id).run(async () => {
      const existing = await this.getRun(e.child_workflow_id);
      if (existing && existing.status === 'running') {
        await this.append(parent, [{ type: 'ChildWorkflowFailed', at: Date.now(), seq: e.seq, error: { message: `workflow '${e.child_workflow_id}' is already running` } }], [
          pinOps.removeChild(e.workflow_type, e.package_version, e.child_workflow_id),
        ]);
        return;
      }
      const pin = this.engine.catalog.pin(entry);
      try {
        const ops = this.startOps(e.child_workflow_id, randomUUID(), entry, e.input, { workflow_id: parent.workflow_id, run_id: parent.run_id, seq: e.seq }, undefined);
        ops.push(pinOps.removeChild(e.workflow_type, e.package_version, e.child_workflow_id));
        faultPoint('child-start.before-write');
        await this.engine.store.write(ops, { sync: false });
        faultPoint('child-start.after-write');
      } finally {
        pin.release();
      }
    });
  }

  /** Batch ops that start a run: record, WorkflowStarted, active marker, run pin. */
  private startOps(
    workflowId: string,
    runId: string,
    entry: VersionEntry,
    input: unknown,
    parent: RunRecord['parent'],
    continuedFrom: string | undefined,
  ): BatchOp[] {
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
    return [
      putJSON(K.event(runId, 0), started),
      putJSON(K.run(workflowId), rec),
      putJSON(K.active(workflowId), { run_id: runId }),
      pinOps.addRun(entry.workflowType, entry.version, workflowId, runId),
    ];
  }

  /** Ops that end a run's claims: active marker, run pin, pending timers, unstarted children's pins. */
  private endOps(rec: RunRecord, history: WorkflowEvent[]): BatchOp[] {
    const fired = new Set(history.flatMap((e) => (e.type === 'TimerFired' ? [e.seq] : [])));
    const resolved = new Set(history.flatMap((e) => (e.type === 'ChildWorkflowCompleted' || e.type === 'ChildWorkflowFailed' ? [e.seq] : [])));
    const ops: BatchOp[] = [del(K.active(rec.workflow_id)), pinOps.removeRun(rec.workflow_type, rec.version, rec.workflow_id)];
    for (const e of history) {
      if (e.type === 'TimerStarted' && !fired.has(e.seq)) ops.push(del(K.timer(e.fire_at, rec.workflow_id, e.seq)));
      // A child this run recorded but never started never will now (only a running parent
      // starts its children): its recorded-child pin goes too, or it would block unload forever.
      // A child that did start already dropped its pin, so deleting the key again is a no-op.
      if (e.type === 'ChildWorkflowStarted' && !resolved.has(e.seq)) ops.push(pinOps.removeChild(e.workflow_type, e.package_version, e.child_workflow_id));
    }
    return ops;
  }

  /** Ends the current run: completed, failed, or continued as new on the routed version. */
  private async finish(rec: RunRecord, history: WorkflowEvent[], activation: Exclude<Activation, { status: 'blocked' }>): Promise<void> {
    const at = Date.now();
    const ops = this.endOps(rec, history);
    if (activation.status === 'completed') {
      await this.append(rec, [{ type: 'WorkflowCompleted', at, result: activation.result ?? null }], ops, { status: 'completed', result: activation.result ?? null });
      return;
    }
    if (activation.status === 'failed') {
      await this.append(rec, [{ type: 'WorkflowFailed', at, error: activation.error }], ops, { status: 'failed', error: activation.error });
      return;
    }
    // continue-as-new: the successor takes the version routed now, under an in-flight pin
    // until its WorkflowStarted is written in the same batch that ends this run.
    const pin = this.engine.catalog.pinStart(rec.workflow_type, rec.workflow_id);
    try {
      const nextRunId = randomUUID();
      const closing: WorkflowEvent = { type: 'WorkflowContinuedAsNew', at, input: activation.input ?? null, next_run_id: nextRunId };
      const batch = [putJSON(K.event(rec.run_id, rec.events), closing), ...ops];
      const startOps = this.startOps(rec.workflow_id, nextRunId, pin.entry, activation.input, rec.parent, rec.run_id);
      await this.engine.store.write([...batch, ...startOps], { sync: false });
    } finally {
      pin.release();
    }
  }

  /** Appends events to the current run's history with extra ops, in one batch. */
  private async append(rec: RunRecord, events: WorkflowEvent[], ops: BatchOp[], patch: Partial<RunRecord> = {}): Promise<void> {
    const batch: BatchOp[] = events.map((e, i) => putJSON(K.event(rec.run_id, rec.events + i), e));
    const next: RunRecord = { ...rec, ...patch, events: rec.events + events.length, updated_at: new Date().toISOString() };
    batch.push(putJSON(K.run(rec.workflow_id), next), ...ops);
    await this.engine.store.write(batch, { sync: false });
    Object.assign(rec, next);
  }

  private async requireRunning(workflowId: string, what: string): Promise<RunRecord> {
    const rec = await this.getRun(workflowId);
    if (!rec) throw unknownWorkflow(workflowId);
    if (rec.status !== 'running') {
      throw new AionError('not_found', `workflow '${workflowId}' is not running (its last run ${rec.status}); nothing to ${what}`, {
        details: { workflow_id: workflowId, run_id: rec.run_id, status: rec.status },
        hint: `see it with: aion show ${workflowId}`,
      });
    }
    return rec;
  }
}

function unknownWorkflow(workflowId: string): AionError {
  return new AionError('not_found', `no workflow with id '${workflowId}'`, {
    details: { workflow_id: workflowId },
    hint: "list runs with 'aion runs'",
  });
}

function summary(rec: RunRecord): RunSummary {
  return {
    workflow_id: rec.workflow_id,
    run_id: rec.run_id,
    workflow_type: rec.workflow_type,
    version: rec.version,
    status: rec.status,
    started_at: rec.started_at,
    updated_at: rec.updated_at,
  };
}
