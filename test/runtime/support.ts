// Shared helpers of the runtime tests: module maps, histories and a tiny engine stand-in.
import type { Activation, WorkflowCommand, WorkflowEvent } from '../../src/runtime/history.js';
import { ModuleRegistry } from '../../src/runtime/registry.js';
import { replay, type RunInfo } from '../../src/runtime/executor.js';

export function mods(sources: Record<string, string>): Map<string, Uint8Array> {
  return new Map(Object.entries(sources).map(([name, source]) => [name, Buffer.from(source)]));
}

let counter = 0;
/** A fresh version id (tests use short ids; the registry does not require a content hash). */
export function newVersion(): string {
  counter += 1;
  return `${counter.toString(16).padStart(4, '0')}${'ab'.repeat(30)}`;
}

/** Registers `flow` (plus any siblings) under a new version of a new registry. */
export function setup(sources: Record<string, string>): { registry: ModuleRegistry; version: string } {
  const registry = new ModuleRegistry();
  const version = newVersion();
  registry.register(version, mods(sources));
  return { registry, version };
}

export function info(overrides: Partial<RunInfo> = {}): RunInfo {
  return {
    workflowId: 'wf-1',
    runId: 'run-1',
    workflowType: 'flow',
    entryModule: 'flow',
    entryFunction: 'main',
    activities: ['charge', 'refund', 'ship', 'slow'],
    ...overrides,
  };
}

export function started(input: unknown, at = 1_000, runId = 'run-1', version = 'v'): WorkflowEvent {
  return {
    type: 'WorkflowStarted',
    at,
    workflow_id: 'wf-1',
    run_id: runId,
    workflow_type: 'flow',
    package_version: version,
    input,
  };
}

/** The events an engine records for a blocked activation's commands, all at time `at`. */
export function record(commands: WorkflowCommand[], at: number): WorkflowEvent[] {
  return commands.map((command): WorkflowEvent => {
    switch (command.type) {
      case 'ScheduleActivity':
        return { type: 'ActivityScheduled', at, seq: command.seq, name: command.name, input: command.input };
      case 'StartTimer':
        return { type: 'TimerStarted', at, seq: command.seq, seconds: command.seconds, fire_at: at + command.seconds * 1000 };
      case 'StartChild':
        return {
          type: 'ChildWorkflowStarted',
          at,
          seq: command.seq,
          child_workflow_id: command.workflow_id ?? `child-${command.seq}`,
          workflow_type: command.workflow_type,
          package_version: 'v',
          input: command.input,
        };
    }
  });
}

/**
 * A minimal engine: replays, records new commands, then completes every activity with
 * `activity(name, input)` and fires every timer, until the run stops being blocked or
 * nothing is left to resolve.
 */
export function drive(
  registry: ModuleRegistry,
  version: string,
  run: RunInfo,
  input: unknown,
  activity: (name: string, input: unknown) => unknown,
): { activation: Activation; history: WorkflowEvent[] } {
  let now = 1_000;
  const history: WorkflowEvent[] = [started(input, now, run.runId, version)];
  for (let round = 0; round < 100; round++) {
    const activation = replay(registry, version, run, history);
    if (activation.status !== 'blocked' || activation.commands.length === 0) return { activation, history };
    now += 10;
    history.push(...record(activation.commands, now));
    for (const command of activation.commands) {
      now += 10;
      if (command.type === 'ScheduleActivity') {
        history.push({ type: 'ActivityCompleted', at: now, seq: command.seq, result: activity(command.name, command.input) });
      } else if (command.type === 'StartTimer') {
        history.push({ type: 'TimerFired', at: now, seq: command.seq });
      }
    }
  }
  throw new Error('drive: too many rounds');
}
