// The event vocabulary of a run's history, and the commands a workflow activation emits.
// Histories are append-only; every event carries `at` (ms since the epoch, wall clock of the
// engine when it was recorded). `seq` numbers a workflow's ctx calls per kind of call
// (activity, timer, child) in the order the workflow code made them: replay matches commands
// to recorded events by it.

export interface ErrorInfo {
  message: string;
  name?: string;
  /** Set when a limit ended the run: `resource_exhausted`. */
  code?: string;
  /** Which limit: `memory` or `time`. */
  limit?: 'memory' | 'time';
  /** With code `output_schema`: where the output breaks its type's output schema. */
  schema_errors?: { path: string; message: string }[];
}

export type WorkflowEvent =
  | {
      type: 'WorkflowStarted';
      at: number;
      workflow_id: string;
      run_id: string;
      workflow_type: string;
      package_version: string;
      input: unknown;
      /** Set when this run is a child recorded by a parent. */
      parent?: { workflow_id: string; run_id: string; seq: number };
      /** Set when this run continues an earlier run of the same workflow id. */
      continued_from?: string;
    }
  | { type: 'ActivityScheduled'; at: number; seq: number; name: string; input: unknown }
  | { type: 'ActivityCompleted'; at: number; seq: number; result: unknown }
  | { type: 'ActivityFailed'; at: number; seq: number; error: ErrorInfo }
  | { type: 'TimerStarted'; at: number; seq: number; seconds: number; fire_at: number }
  | { type: 'TimerFired'; at: number; seq: number }
  | { type: 'SignalReceived'; at: number; name: string; input: unknown }
  | {
      type: 'ChildWorkflowStarted';
      at: number;
      seq: number;
      child_workflow_id: string;
      workflow_type: string;
      package_version: string;
      input: unknown;
    }
  | { type: 'ChildWorkflowCompleted'; at: number; seq: number; result: unknown }
  | { type: 'ChildWorkflowFailed'; at: number; seq: number; error: ErrorInfo }
  | { type: 'WorkflowCompleted'; at: number; result: unknown }
  | { type: 'WorkflowFailed'; at: number; error: ErrorInfo }
  | { type: 'WorkflowTerminated'; at: number; reason: string }
  | { type: 'WorkflowContinuedAsNew'; at: number; input: unknown; next_run_id: string };

export type EventType = WorkflowEvent['type'];

/** What an activation asks the engine to do next, beyond what history already records. */
export type WorkflowCommand =
  | { type: 'ScheduleActivity'; seq: number; name: string; input: unknown }
  | { type: 'StartTimer'; seq: number; seconds: number }
  | { type: 'StartChild'; seq: number; workflow_type: string; input: unknown; workflow_id?: string };

/** The outcome of replaying a history to the point where the workflow can go no further. */
export type Activation =
  | { status: 'blocked'; commands: WorkflowCommand[] }
  | { status: 'completed'; commands: WorkflowCommand[]; result: unknown }
  | { status: 'failed'; commands: WorkflowCommand[]; error: ErrorInfo }
  | { status: 'continued_as_new'; commands: WorkflowCommand[]; input: unknown };

export const TERMINAL_EVENTS: ReadonlySet<EventType> = new Set([
  'WorkflowCompleted',
  'WorkflowFailed',
  'WorkflowTerminated',
  'WorkflowContinuedAsNew',
]);
