// What a run's history implies, in one place. A run's state is folded from its events, one
// event at a time (O(1) each); `impliedIndex` says which index entries that state implies —
// the active marker, the run pin, a timer entry per pending timer, a recorded-child pin per
// child recorded but not started — and `indexDelta` turns two such sets into the batch ops
// that move the index from one to the other. The run writer (driver.ts, runs.ts) and `doctor`
// use exactly these functions, so the index can only ever mean one thing.
import { K } from '../store/keys.js';
import { del, putJSON } from '../store/store.js';
import type { BatchOp } from '../store/kv.js';
import type { ErrorInfo, WorkflowEvent } from '../runtime/history.js';
import type { RunSummary } from './types.js';

/** The current run of a workflow id (`run/<workflow_id>`). */
export interface RunRecord extends RunSummary {
  result: unknown;
  error: ErrorInfo | null;
  /** Set for a child run: where its result goes. Kept across continue-as-new. */
  parent: { workflow_id: string; run_id: string; seq: number } | null;
  /** Number of events in the current run's history. */
  events: number;
}

/** The open calls of a run: what its history asks for and has no answer to yet. */
export interface RunFold {
  activities: Map<number, { name: string; input: unknown }>;
  timers: Map<number, number>;
  /** Recorded children without a result; `started` once the child's own run exists. */
  children: Map<number, { childId: string; workflowType: string; version: string; input: unknown; started: boolean }>;
}

export function emptyFold(): RunFold {
  return { activities: new Map(), timers: new Map(), children: new Map() };
}

/** Applies one event to the fold. Exhaustive over the event vocabulary. */
export function foldEvent(fold: RunFold, event: WorkflowEvent): void {
  switch (event.type) {
    case 'ActivityScheduled':
      fold.activities.set(event.seq, { name: event.name, input: event.input });
      return;
    case 'ActivityCompleted':
    case 'ActivityFailed':
      fold.activities.delete(event.seq);
      return;
    case 'TimerStarted':
      fold.timers.set(event.seq, event.fire_at);
      return;
    case 'TimerFired':
      fold.timers.delete(event.seq);
      return;
    case 'ChildWorkflowStarted':
      fold.children.set(event.seq, { childId: event.child_workflow_id, workflowType: event.workflow_type, version: event.package_version, input: event.input, started: false });
      return;
    case 'ChildWorkflowCompleted':
    case 'ChildWorkflowFailed':
      fold.children.delete(event.seq);
      return;
    case 'WorkflowStarted':
    case 'SignalReceived':
    case 'WorkflowCompleted':
    case 'WorkflowFailed':
    case 'WorkflowTerminated':
    case 'WorkflowContinuedAsNew':
      return;
    default: {
      const never: never = event;
      throw new Error(`unknown history event ${JSON.stringify(never)}`);
    }
  }
}

export function foldHistory(history: readonly WorkflowEvent[]): RunFold {
  const fold = emptyFold();
  for (const event of history) foldEvent(fold, event);
  return fold;
}

/** Index entries (key → JSON value) a run's record and fold imply. A run that is not running implies none. */
export function impliedIndex(rec: Pick<RunRecord, 'workflow_id' | 'run_id' | 'workflow_type' | 'version' | 'status'>, fold: RunFold): Map<string, unknown> {
  const entries = new Map<string, unknown>();
  if (rec.status !== 'running') return entries;
  entries.set(K.active(rec.workflow_id), { run_id: rec.run_id });
  entries.set(K.runPin(rec.workflow_type, rec.version, rec.workflow_id), { run_id: rec.run_id });
  for (const [seq, fireAt] of fold.timers) entries.set(K.timer(fireAt, rec.workflow_id, seq), { run_id: rec.run_id });
  for (const child of fold.children.values()) {
    if (!child.started) entries.set(K.childPin(child.workflowType, child.version, child.childId), { recorded_by: rec.workflow_id });
  }
  return entries;
}

/**
 * Whether two index values are equal, without JSON text per step: they are flat objects of
 * strings (`{run_id}`, `{recorded_by}`), compared key by key. Anything else counts as changed,
 * which costs at most a put of the same value.
 */
function sameEntry(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}

/** Ops that move the index from `before` to `after` (puts for new or changed entries, dels for gone ones). */
export function indexDelta(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>): BatchOp[] {
  const ops: BatchOp[] = [];
  for (const [key, value] of after) {
    const old = before.get(key);
    if (old === undefined || !sameEntry(old, value)) ops.push(putJSON(key, value));
  }
  for (const key of before.keys()) if (!after.has(key)) ops.push(del(key));
  return ops;
}

export function summary(rec: RunRecord): RunSummary {
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
