// The pin index: which active runs and recorded-but-unstarted children hold a version.
// Entries are written by the run engine in the same batch as the events that create and end
// them, so the index always agrees with the histories. Reading the pins of one version scans
// only that version's entries: the cost never grows with the number of runs overall.
import { K } from './keys.js';
import { del, putJSON, type Store } from './store.js';
import type { BatchOp } from './kv.js';

export interface RunPin {
  workflow_id: string;
  run_id: string;
}

export interface ChildPin {
  child_workflow_id: string;
  recorded_by: string;
}

export interface VersionPins {
  runs: RunPin[];
  children: ChildPin[];
  /** Every pin entry of the version, including those beyond `limit`. */
  runsTotal: number;
  childrenTotal: number;
}

export const pinOps = {
  addRun: (type: string, version: string, workflowId: string, runId: string): BatchOp =>
    putJSON(K.runPin(type, version, workflowId), { run_id: runId }),
  removeRun: (type: string, version: string, workflowId: string): BatchOp => del(K.runPin(type, version, workflowId)),
  addChild: (type: string, version: string, childWorkflowId: string, recordedBy: string): BatchOp =>
    putJSON(K.childPin(type, version, childWorkflowId), { recorded_by: recordedBy }),
  removeChild: (type: string, version: string, childWorkflowId: string): BatchOp =>
    del(K.childPin(type, version, childWorkflowId)),
};

/**
 * Reads the pins of one version: up to `limit` holders of each kind in key order, and the
 * totals. Fails `store` when the index cannot be read; a corrupt entry still counts as a pin.
 */
export async function readVersionPins(store: Store, type: string, version: string, limit = 100): Promise<VersionPins> {
  const result: VersionPins = { runs: [], children: [], runsTotal: 0, childrenTotal: 0 };
  const prefixLength = K.pinRange(type, version).gt.length;
  if (limit <= 0) {
    // Counting only (aion versions): the keys say everything, values are never read.
    for await (const k of store.keys(K.pinRange(type, version))) {
      const kind = k.slice(prefixLength, k.indexOf('\x00', prefixLength));
      if (kind === 'run') result.runsTotal++;
      else if (kind === 'child') result.childrenTotal++;
    }
    return result;
  }
  const decoder = new TextDecoder();
  for await (const [k, bytes] of store.entries(K.pinRange(type, version))) {
    const rest = k.slice(prefixLength);
    const sep = rest.indexOf('\x00');
    const kind = rest.slice(0, sep);
    const id = rest.slice(sep + 1);
    let value: Record<string, string> = {};
    try {
      value = JSON.parse(decoder.decode(bytes)) as Record<string, string>;
    } catch {
      // A damaged entry still pins: refusing an unload is the safe reading.
    }
    if (kind === 'run') {
      result.runsTotal++;
      if (result.runs.length < limit) result.runs.push({ workflow_id: id, run_id: value.run_id ?? '' });
    } else if (kind === 'child') {
      result.childrenTotal++;
      if (result.children.length < limit) result.children.push({ child_workflow_id: id, recorded_by: value.recorded_by ?? '' });
    }
  }
  return result;
}
