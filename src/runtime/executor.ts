// Workflow execution by replay, and activity execution.
//
// replay() rebuilds a run's state the only way there is: it starts the workflow function from
// the beginning in a fresh deterministic sandbox and feeds it the run's history one event at a
// time, in history order, checking that the code asks for exactly what history recorded.
// runActivity() runs one activity in its own non-deterministic sandbox.

import { AionError } from '../errors.js';
import type { Activation, ErrorInfo, WorkflowCommand, WorkflowEvent } from './history.js';
import { TERMINAL_EVENTS } from './history.js';
import { DEFAULT_ACTIVATION_TIMEOUT_MS, Sandbox, StepTimeout, versionModules } from './sandbox.js';
import type { ModuleRegistry } from './registry.js';

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

/** An activity failed, timed out or could not be run; `info` is what to record in ActivityFailed. */
export class ActivityError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'ActivityError';
    this.info = info;
  }
}

export interface RunInfo {
  workflowId: string;
  runId: string;
  workflowType: string;
  entryModule: string;
  entryFunction: string;
  /** The manifest's declared activities; ctx.activity refuses others. Omitted = unchecked. */
  activities?: readonly string[];
}

export interface ReplayOptions {
  /** Bound of each activation step: the start, and the application of each event. */
  timeoutMs?: number;
}

type Kind = 'activity' | 'timer' | 'child';
const KIND_LABEL: Record<Kind, string> = { activity: 'activity', timer: 'timer', child: 'child workflow' };

type Recorded =
  | Extract<WorkflowEvent, { type: 'ActivityScheduled' }>
  | Extract<WorkflowEvent, { type: 'TimerStarted' }>
  | Extract<WorkflowEvent, { type: 'ChildWorkflowStarted' }>;

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

/**
 * Re-runs the workflow from the start against `history` (which must begin with its
 * WorkflowStarted event) and returns its status and the NEW commands it issued, those history
 * does not record yet, in the order the code issued them. Deterministic: the same history and
 * code always give the same activation.
 *
 * Matching: a command matches the recorded event of its kind with the same seq (seq counts
 * ctx.activity / ctx.sleep / ctx.child calls separately, from 1). An activity must have the
 * recorded name and a child the recorded workflow type; inputs and timer durations are not
 * compared. A resolving event for a call the code has not made by then, or a recorded call the
 * code never makes, is non-determinism too.
 *
 * Never throws for anything the workflow does: its exceptions, a result that is not JSON, a
 * step exceeding `timeoutMs` and non-determinism (error.name 'NonDeterminismError') all come
 * back as a `failed` activation. Throws AionError('not_found') for an unregistered version and
 * AionError('internal') for a history that does not start with WorkflowStarted.
 * Once the workflow settles (completes, fails, continues as new) the rest of the history is not
 * applied and later commands are dropped; the activation's `commands` are those issued before.
 */
export function replay(
  registry: ModuleRegistry,
  version: string,
  info: RunInfo,
  history: readonly WorkflowEvent[],
  opts: ReplayOptions = {},
): Activation {
  const modules = versionModules(registry, version);
  const started = history[0];
  if (started === undefined || started.type !== 'WorkflowStarted') {
    throw new AionError('internal', `history of run ${info.runId} does not start with WorkflowStarted`);
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ACTIVATION_TIMEOUT_MS;

  // Calls history records, by kind and seq, up to the first terminal event.
  const events: WorkflowEvent[] = [];
  for (const event of history.slice(1)) {
    if (TERMINAL_EVENTS.has(event.type)) break;
    events.push(event);
  }
  const recorded: Record<Kind, Map<number, Recorded>> = { activity: new Map(), timer: new Map(), child: new Map() };
  for (const event of events) {
    if (event.type === 'ActivityScheduled') recorded.activity.set(event.seq, event);
    else if (event.type === 'TimerStarted') recorded.timer.set(event.seq, event);
    else if (event.type === 'ChildWorkflowStarted') recorded.child.set(event.seq, event);
  }

  const counters: Record<Kind, number> = { activity: 0, timer: 0, child: 0 };
  const issued: Record<Kind, Set<number>> = { activity: new Set(), timer: new Set(), child: new Set() };
  const commands: WorkflowCommand[] = [];
  let outcome: Activation | undefined;
  let fatal: NonDeterminismError | undefined;
  const done = (): boolean => outcome !== undefined || fatal !== undefined;

  const onCommand = (kindText: string, name: string, inputJson: string, workflowId: string): number => {
    const kind = kindText as Kind;
    const seq = ++counters[kind];
    if (done()) return seq;
    issued[kind].add(seq);
    const input: unknown = JSON.parse(inputJson);
    const step = `${KIND_LABEL[kind]} #${seq}`;
    const previous = recorded[kind].get(seq);
    if (previous !== undefined) {
      if (previous.type === 'ActivityScheduled' && previous.name !== name) {
        fatal = new NonDeterminismError(step, `history has '${previous.name}', code asked for '${name}'`);
      } else if (previous.type === 'ChildWorkflowStarted' && previous.workflow_type !== name) {
        fatal = new NonDeterminismError(step, `history has workflow type '${previous.workflow_type}', code asked for '${name}'`);
      }
      return seq;
    }
    if (kind === 'activity') commands.push({ type: 'ScheduleActivity', seq, name, input });
    else if (kind === 'timer') commands.push({ type: 'StartTimer', seq, seconds: input as number });
    else {
      const command: WorkflowCommand = { type: 'StartChild', seq, workflow_type: name, input };
      if (workflowId !== '') command.workflow_id = workflowId;
      commands.push(command);
    }
    return seq;
  };
  const onSettle = (status: string, text: string): void => {
    if (done()) return;
    const value: unknown = JSON.parse(text);
    if (status === 'completed') outcome = { status: 'completed', commands, result: value };
    else if (status === 'continued_as_new') outcome = { status: 'continued_as_new', commands, input: value };
    else outcome = { status: 'failed', commands, error: value as ErrorInfo };
  };

  const sandbox = new Sandbox(
    modules,
    { command: onCommand, settle: onSettle },
    {
      mode: 'workflow',
      seed: seedOf(info.runId),
      now: started.at,
      activities: info.activities === undefined ? null : [...info.activities],
      info: { workflowId: info.workflowId, runId: info.runId, workflowType: info.workflowType, version },
    },
  );

  const failed = (error: ErrorInfo): Activation => ({ status: 'failed', commands: [], error });
  const step = (what: string, job: () => void): Activation | undefined => {
    try {
      sandbox.step(job, timeoutMs);
      return undefined;
    } catch (error) {
      if (error instanceof StepTimeout) {
        return failed({
          message: `workflow activation exceeded ${error.timeoutMs} ms (infinite loop?) while ${what}`,
          name: 'ActivationTimeout',
        });
      }
      const message = error instanceof Error ? error.message : String(error);
      return failed({ message: `workflow activation failed while ${what}: ${message}`, name: 'ActivationError' });
    }
  };

  const aborted = step('starting the workflow', () =>
    sandbox.api.start(info.entryModule, info.entryFunction, json(started.input)),
  );
  if (aborted !== undefined) return aborted;

  for (const event of events) {
    if (done()) break;
    let kind: Kind | undefined;
    let apply: (() => void) | undefined;
    switch (event.type) {
      case 'ActivityCompleted':
        kind = 'activity';
        apply = () => sandbox.api.resolvePending('activity', event.seq, json(event.result));
        break;
      case 'ActivityFailed':
        kind = 'activity';
        apply = () => sandbox.api.rejectPending('activity', event.seq, event.error.message, event.error.name ?? '');
        break;
      case 'TimerFired':
        kind = 'timer';
        apply = () => sandbox.api.resolvePending('timer', event.seq, 'null');
        break;
      case 'ChildWorkflowCompleted':
        kind = 'child';
        apply = () => sandbox.api.resolvePending('child', event.seq, json(event.result));
        break;
      case 'ChildWorkflowFailed':
        kind = 'child';
        apply = () => sandbox.api.rejectPending('child', event.seq, event.error.message, event.error.name ?? '');
        break;
      case 'SignalReceived':
        apply = () => sandbox.api.signal(event.name, json(event.input));
        break;
      default:
        continue; // ActivityScheduled, TimerStarted, ChildWorkflowStarted: matched by seq above.
    }
    if (kind !== undefined && 'seq' in event && !issued[kind].has(event.seq)) {
      fatal = new NonDeterminismError(
        `${KIND_LABEL[kind]} #${event.seq}`,
        `history has its ${event.type}, but the code has not asked for it`,
      );
      break;
    }
    const label = 'seq' in event ? `${event.type} #${event.seq}` : `${event.type} '${(event as { name: string }).name}'`;
    const at = event.at;
    const run = apply;
    const stopped = step(`applying ${label}`, () => {
      sandbox.api.setNow(at);
      run();
    });
    if (stopped !== undefined) return stopped;
  }

  if (fatal === undefined) {
    for (const event of events) {
      const kind: Kind | undefined =
        event.type === 'ActivityScheduled' ? 'activity'
        : event.type === 'TimerStarted' ? 'timer'
        : event.type === 'ChildWorkflowStarted' ? 'child'
        : undefined;
      if (kind === undefined || issued[kind].has((event as Recorded).seq)) continue;
      const what =
        event.type === 'ActivityScheduled' ? `'${event.name}' scheduled`
        : event.type === 'ChildWorkflowStarted' ? `child '${event.workflow_type}' started`
        : 'a timer started';
      fatal = new NonDeterminismError(`${KIND_LABEL[kind]} #${(event as Recorded).seq}`, `history has ${what}, but the code never asked for it`);
      break;
    }
  }
  if (fatal !== undefined) return failed({ message: fatal.message, name: fatal.name });
  return outcome ?? { status: 'blocked', commands };
}

export interface ActivityOptions {
  /** Bound of the whole call, sync code and awaited work together (default 60 s). */
  timeoutMs?: number;
  /** Where the activity's console output goes (default: stderr, prefixed with the activity name). */
  log?: (level: string, text: string) => void;
}

export const DEFAULT_ACTIVITY_TIMEOUT_MS = 60_000;

/**
 * Runs `exports.activities[name](input)` of the version's entry module in a fresh
 * non-deterministic sandbox: real Date and Math.random, setTimeout/clearTimeout, console, but
 * no Node APIs and no require beyond sibling modules. The input is cloned into the sandbox as
 * JSON and the result comes back as JSON. Resolves with the result; rejects with ActivityError
 * (carrying the ErrorInfo to record) when the activity throws or rejects, is missing, its
 * module fails to load, its result is not JSON, or it exceeds `timeoutMs`. Rejects with
 * AionError('not_found') for an unregistered version. After a timeout the activity's pending
 * timers are cancelled and anything it still does is ignored.
 */
export async function runActivity(
  registry: ModuleRegistry,
  version: string,
  entryModule: string,
  name: string,
  input: unknown,
  opts: ActivityOptions = {},
): Promise<unknown> {
  const modules = versionModules(registry, version);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ACTIVITY_TIMEOUT_MS;
  const log = opts.log ?? ((level: string, text: string) => process.stderr.write(`[activity ${name}] ${level}: ${text}\n`));
  const deadline = Date.now() + timeoutMs;

  return new Promise<unknown>((resolve, reject) => {
    const timers = new Map<number, NodeJS.Timeout>();
    let nextTimer = 1;
    let settled = false;
    const finish = (outcome: { ok: true; value: unknown } | { ok: false; error: ErrorInfo }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      if (outcome.ok) resolve(outcome.value);
      else reject(new ActivityError(outcome.error));
    };
    const timedOut = (): void =>
      finish({ ok: false, error: { message: `activity '${name}' exceeded ${timeoutMs} ms`, name: 'ActivityTimeout' } });
    const overall = setTimeout(timedOut, timeoutMs);

    let sandbox: Sandbox;
    const runStep = (job: () => void): void => {
      if (settled) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return timedOut();
      try {
        sandbox.step(job, remaining);
      } catch (error) {
        if (error instanceof StepTimeout) return timedOut();
        finish({ ok: false, error: { message: error instanceof Error ? error.message : String(error), name: 'Error' } });
      }
    };
    sandbox = new Sandbox(
      modules,
      {
        log: (level, text) => {
          if (!settled) log(level, text);
        },
        setTimer: (ms) => {
          const id = nextTimer++;
          if (settled) return id;
          timers.set(
            id,
            setTimeout(() => {
              timers.delete(id);
              runStep(() => sandbox.api.fireTimer(id));
            }, ms),
          );
          return id;
        },
        clearTimer: (id) => {
          const timer = timers.get(id);
          if (timer !== undefined) clearTimeout(timer);
          timers.delete(id);
        },
        activityDone: (ok, text) => {
          const value: unknown = JSON.parse(text);
          finish(ok ? { ok: true, value } : { ok: false, error: value as ErrorInfo });
        },
      },
      { mode: 'activity', seed: 0, now: 0, activities: null, info: null },
    );
    runStep(() => sandbox.api.callActivity(entryModule, name, json(input)));
  });
}
