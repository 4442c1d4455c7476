// LiveRuns: the one owner of which runs this process executes. A live run pins its version as
// `live_run` (unload names it); `aion serve` makes every active run live, a command driving a
// run makes it live while it drives it. Separately, a bounded cache (least recently used out)
// keeps the engine-side state of runs whose workflow code is resident in the workflow thread,
// so an activation costs O(1) in the length of the run's history; an evicted run is replayed
// from its history when it next runs.
import type { RunFold, RunRecord } from './run-state.js';
import type { WorkflowEvent } from '../runtime/history.js';
import type { ActivationResult } from '../runtime/pool.js';

export interface LiveRun {
  workflowId: string;
  runId: string;
  workflowType: string;
  version: string;
}

/** The engine-side state of a run being executed here. */
export interface RunState {
  rec: RunRecord;
  fold: RunFold;
  /** Recorded events the workflow code has not been given yet (only meaningful while it is resident). */
  pending: WorkflowEvent[];
  /** The store epoch at which `rec` was last known to be current (see Store.epoch). */
  epoch: number;
  /** How many times in a row this run's code thread died under it (memory is ambiguous once). */
  deaths: number;
  /** `pending` is the run's whole history (a run just started here): no need to read it back. */
  complete?: boolean;
  /** The run's first activation, begun before its start was written (Driver.startBatch). */
  first?: Promise<ActivationResult>;
}

export const DEFAULT_MAX_RESIDENT = 5000;

export class LiveRuns {
  private readonly live = new Map<string, LiveRun>();
  private readonly states = new Map<string, RunState>();
  /** Set by `aion serve`: runs stay live between activations (they execute in this process). */
  serving = false;
  /** Called with each run evicted from the cache (its code slot must go too). */
  onEvict: ((runId: string) => void) | undefined;

  constructor(public maxResident = DEFAULT_MAX_RESIDENT) {}

  mark(run: LiveRun): void {
    this.live.set(run.workflowId, run);
  }

  unmark(workflowId: string): void {
    this.live.delete(workflowId);
  }

  isLive(workflowId: string, runId: string): boolean {
    return this.live.get(workflowId)?.runId === runId;
  }

  /** Live runs on one version. */
  count(workflowType: string, version: string): number {
    let n = 0;
    for (const run of this.live.values()) if (run.workflowType === workflowType && run.version === version) n++;
    return n;
  }

  get size(): number {
    return this.live.size;
  }

  clear(): void {
    this.live.clear();
    for (const state of this.states.values()) this.release(state);
    this.states.clear();
  }

  /** The cached state of a workflow's run (and marks it most recently used). */
  state(workflowId: string): RunState | undefined {
    const state = this.states.get(workflowId);
    if (state !== undefined) {
      this.states.delete(workflowId);
      this.states.set(workflowId, state);
    }
    return state;
  }

  /** Caches a state; evicts the least recently used beyond the bound. */
  keep(workflowId: string, state: RunState): void {
    this.states.delete(workflowId);
    this.states.set(workflowId, state);
    while (this.states.size > Math.max(1, this.maxResident)) {
      const [oldest, evicted] = this.states.entries().next().value as [string, RunState];
      this.states.delete(oldest);
      this.release(evicted);
    }
  }

  forget(workflowId: string): void {
    const state = this.states.get(workflowId);
    if (state === undefined) return;
    this.states.delete(workflowId);
    this.release(state);
  }

  /**
   * A state leaves the cache: its code slot goes too, and so does the slot an early first
   * activation (RunState.first) that no step has taken yet leaves once it is done.
   */
  private release(state: RunState): void {
    const runId = state.rec.run_id;
    this.onEvict?.(runId);
    const first = state.first;
    if (first === undefined) return;
    state.first = undefined;
    void first.then(() => this.onEvict?.(runId), () => undefined);
  }

  get cached(): number {
    return this.states.size;
  }
}
