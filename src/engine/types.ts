// Results of the engine's public operations: the contract's JSON shapes, field for field.

export interface LoadOutcome {
  workflow_type: string;
  version: string;
  /** Every workflow type of the package (its own first): all registered, the non-internal ones routed. */
  workflow_types: string[];
  /** The author's label from workflow.json, or null. */
  label: string | null;
  /** False for `load --no-route`: registered and persisted, the route untouched. */
  routed: boolean;
  deployed_entry_module: string;
  entry_function: string;
  freshly_loaded: boolean;
  route_changed: boolean;
  /** Present (true) only for --dry-run: nothing was changed. */
  dry_run?: true;
  /** The version routed before this load (null when the type had none). */
  previous: string | null;
}

export interface PinCounts {
  live: number;
  recoverable: number;
  recorded_children: number;
}

export interface VersionInfo {
  workflow_type: string;
  version: string;
  deployed_entry_module: string;
  entry_function: string;
  manifest_version: number;
  manifest_digest: string;
  loaded_at: string;
  /** The author's label from workflow.json, or null. */
  label: string | null;
  route_active: boolean;
  /** Whether `rollback` would route the type to this version now. */
  rollback_target: boolean;
  /** The share of new starts this version gets while its type ramps to it, else null. */
  ramp_percent: number | null;
  pins: PinCounts;
  /** Every workflow type of this row's package (its own included, the package's first). */
  package_types: string[];
  /** An internal type: started only as a child by its package's workflows, never routed. */
  internal: boolean;
  /** `startup`: given to the running aion serve with --package (not persisted); else `loaded`. */
  source: 'loaded' | 'startup';
  /** routed | ramping | draining (not routed, still pinned) | drained (safe to unload). */
  state: 'routed' | 'ramping' | 'draining' | 'drained';
}

export interface RouteOutcome {
  workflow_type: string;
  version: string;
  route_active: true;
  previous: string | null;
}

export interface RampOutcome {
  workflow_type: string;
  /** The routed version (the rest of new starts go there). */
  routed: string | null;
  ramping: { version: string; percent: number } | null;
  previous_ramp: { version: string; percent: number } | null;
  dry_run?: true;
}

/** One workflow type's rollout, as `aion status` shows it. */
export interface RolloutStatus {
  workflow_type: string;
  routed: string | null;
  /** The routed version's label. */
  label: string | null;
  /** Where the routed version comes from (`startup`: serve --package), or null with no route. */
  source: 'loaded' | 'startup' | null;
  ramping: { version: string; percent: number; label: string | null } | null;
  /** What `rollback` would route to (a loaded version), else null. */
  rollback_target: string | null;
  draining: { version: string; pins: PinCounts }[];
  drained: string[];
  /** Active runs per version (live and recoverable). */
  runs: Record<string, { running: number }>;
}

export interface PruneOutcome {
  unloaded: { workflow_type: string; version: string }[];
  kept: { workflow_type: string; version: string; reason: 'routed' | 'ramping' | 'rollback_target' | 'keep' | 'pinned' }[];
  dry_run?: true;
}

export interface HoldersOutcome {
  workflow_type: string;
  version: string;
  holders: PinHolder[];
  holders_total: number;
}

export interface UnloadOutcome {
  workflow_type: string;
  version: string;
  unloaded: boolean;
  dry_run?: true;
}

export type PinHolder =
  | { kind: 'in_flight_start'; workflow_type?: string }
  | { kind: 'live_run'; workflow_id: string; run_id: string; workflow_type?: string; /** The leasing worker, on a shared store. */ worker?: string }
  | { kind: 'recoverable_run'; workflow_id: string; run_id: string; workflow_type?: string }
  | { kind: 'recorded_child'; child_workflow_id: string; recorded_by: string; workflow_type?: string };

/** One deploy audit record (load, route, ramp, unload), in the order they happened. */
export interface DeployRecord {
  at: string;
  user: string;
  pid: number;
  operation: 'load' | 'route' | 'ramp' | 'unload';
  workflow_type: string;
  version: string;
  previous: string | null;
  /** Ramp records: the ramp set (null: cleared); `version` is its version (or the cleared one's). */
  ramp?: { version: string; percent: number } | null;
  /** Load records of `load --no-route`: false (the route did not move). */
  routed?: boolean;
  /** Load and unload records of a package with several types: all of them (its own first). */
  workflow_types?: string[];
  /** Load records of a package with several types: each type's routed version before the load. */
  previous_by_type?: Record<string, string | null>;
  message?: string;
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'terminated' | 'continued_as_new';

/** The current run of a workflow id, as `runs` lists it. */
export interface RunSummary {
  workflow_id: string;
  run_id: string;
  workflow_type: string;
  version: string;
  status: RunStatus;
  started_at: string;
  updated_at: string;
}

export interface RunDetail extends RunSummary {
  result: unknown;
  error: { message: string; name?: string } | null;
  history: unknown[];
}

export interface StartOutcome {
  workflow_id: string;
  run_id: string;
  workflow_type: string;
  version: string;
  status: RunStatus;
}

export interface SignalOutcome {
  workflow_id: string;
  run_id: string;
  status: RunStatus;
}
