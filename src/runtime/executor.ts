// In-thread execution of workflow code: replay() of a whole history and runActivity() of one
// activity, each in a fresh code host bounded per step. The engine itself runs code in worker
// threads (src/runtime/pool.ts); these are the same machinery without the thread, for tests,
// tools and the determinism semantics' reference.

import type { Activation, ErrorInfo, WorkflowEvent } from './history.js';
import { CodeHost, type RunInit } from './host.js';
import { versionSources, DEFAULT_ACTIVATION_TIMEOUT_MS } from './sandbox.js';

export { versionSources };
import type { ModuleRegistry } from './registry.js';
import { escapeText } from '../escape.js';

export { NonDeterminismError, seedOf } from './host.js';

/** An activity failed, timed out or could not be run; `info` is what to record in ActivityFailed. */
export class ActivityError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = info.name ?? 'ActivityError';
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


/**
 * Re-runs the workflow from the start against `history` (which must begin with its
 * WorkflowStarted event) and returns its status and the NEW commands it issued, those history
 * does not record yet, in the order the code issued them. Deterministic.
 *
 * Matching: a command matches the recorded event of its kind with the same seq (seq counts
 * ctx.activity / ctx.sleep / ctx.child calls separately, from 1). An activity must have the
 * recorded name and a child the recorded workflow type. A resolving event for a call the code
 * has not made by then, or a recorded call the code never makes, is non-determinism too.
 *
 * Never throws for anything the workflow does (see CodeHost.activate). Throws
 * AionError('not_found') for an unregistered version and Error for a history that does not
 * start with WorkflowStarted.
 */
export function replay(
  registry: ModuleRegistry,
  version: string,
  info: RunInfo,
  history: readonly WorkflowEvent[],
  opts: ReplayOptions = {},
): Activation {
  const sources = versionSources(registry, version);
  const host = new CodeHost('workflow', { timeoutMs: opts.timeoutMs ?? DEFAULT_ACTIVATION_TIMEOUT_MS });
  host.addVersion(version, sources);
  const init: RunInit = {
    workflowId: info.workflowId,
    runId: info.runId,
    workflowType: info.workflowType,
    version,
    entryModule: info.entryModule,
    entryFunction: info.entryFunction,
    activities: info.activities === undefined ? null : [...info.activities],
  };
  return host.activate(info.runId, init, history);
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
 * non-deterministic context in this thread. Resolves with the result; rejects with
 * ActivityError (carrying the ErrorInfo to record) when the activity throws or rejects, is
 * missing, its module fails to load, its result is not JSON, or it exceeds `timeoutMs`
 * (name `ActivityTimeout`; its pending timers are cancelled). Rejects with
 * AionError('not_found') for an unregistered version.
 */
export async function runActivity(
  registry: ModuleRegistry,
  version: string,
  entryModule: string,
  name: string,
  input: unknown,
  opts: ActivityOptions = {},
): Promise<unknown> {
  const sources = versionSources(registry, version);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ACTIVITY_TIMEOUT_MS;
  const host = new CodeHost('activity', { timeoutMs });
  host.addVersion(version, sources);
  const log = opts.log ?? ((level: string, text: string) => process.stderr.write(`[activity ${name}] ${level}: ${escapeText(text)}\n`));
  let timer: NodeJS.Timeout | undefined;
  const overall = new Promise<{ ok: false; error: ErrorInfo }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: { message: `activity '${name}' exceeded ${timeoutMs} ms`, name: 'ActivityTimeout', code: 'resource_exhausted', limit: 'time' } }), timeoutMs);
  });
  const outcome = await Promise.race([host.callActivity(version, entryModule, name, input, { log }), overall]);
  clearTimeout(timer);
  if (!outcome.ok) {
    host.cancelCalls(outcome);
    if (outcome.error.name === 'ActivityTimeout') outcome.error.message = `activity '${name}' exceeded ${timeoutMs} ms`;
    throw new ActivityError(outcome.error);
  }
  return outcome.value;
}
