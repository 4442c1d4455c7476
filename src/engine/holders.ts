// Pin holders for people: what each one is, and the command that actually frees it. Pure and
// import-free, so `aion wait` can explain holders without loading the engine.
import type { PinHolder } from './types.js';

export function describeHolder(h: PinHolder): string {
  switch (h.kind) {
    case 'in_flight_start':
      return 'an in-flight start';
    case 'live_run':
      return `live run ${h.workflow_id} (run ${h.run_id})`;
    case 'recoverable_run':
      return `recoverable run ${h.workflow_id} (run ${h.run_id})`;
    case 'recorded_child':
      return `recorded child ${h.child_workflow_id} (recorded by ${h.recorded_by})`;
  }
}

/** A list of holders for a message: the first five, then how many more. */
export function describeHolders(holders: readonly PinHolder[], total: number): string {
  const more = total > 5 ? ` and ${total - 5} more` : '';
  return holders.slice(0, 5).map(describeHolder).join('; ') + more;
}

/**
 * The next step for a version's holders, by the kind of the first one: a run ends by
 * finishing or `aion terminate`; a recoverable run progresses only when something drives it
 * (`aion serve`, a signal); a recorded child is freed when its parent starts it (under
 * `aion serve`) or when the parent is terminated; an in-flight start is recorded in a moment.
 */
export function holdersHint(workflowType: string, version: string, holders: readonly PinHolder[]): string {
  const first = holders[0];
  const wait = `aion wait ${workflowType} ${version.slice(0, 12)} --drained --timeout 10m`;
  if (!first) return `retry: ${wait}`;
  const ids = (kind: PinHolder['kind']) => [...new Set(holders.flatMap((h) => (h.kind === kind && 'workflow_id' in h ? [h.workflow_id] : [])))].slice(0, 3);
  switch (first.kind) {
    case 'live_run':
      return `wait for the runs to finish (${wait}), or end them: ${ids('live_run').map((id) => `aion terminate ${id}`).join('; ')}`;
    case 'recoverable_run':
      return `nothing is executing them: run aion serve (or signal them) so they finish, or end them: ${ids('recoverable_run').map((id) => `aion terminate ${id}`).join('; ')}`;
    case 'recorded_child': {
      const parents = [...new Set(holders.flatMap((h) => (h.kind === 'recorded_child' ? [h.recorded_by] : [])))].slice(0, 3);
      return `the child starts when aion serve drives its parent; or terminate the parent: ${parents.map((id) => `aion terminate ${id}`).join('; ')}`;
    }
    case 'in_flight_start':
      return `a start is being recorded on it right now; retry in a moment (${wait})`;
  }
}
