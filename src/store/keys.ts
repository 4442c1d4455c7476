// The keyspace of the state directory. Every key is `<space>\x00<part>\x00<part>…` so that a
// prefix plus `\x00` selects exactly one group in a range scan. Parts never contain `\x00`
// (workflow types and versions are validated; workflow ids are checked by the engine).

export const SEP = '\x00';
const HIGH = '\xff';

export const FORMAT_KEY = 'meta' + SEP + 'format';
/**
 * 2: archives are files under `<state>/archives` (format 1 kept them in LevelDB, `K.archive`;
 * this build still reads those, and raises a directory to 2 with its first archive file).
 */
export const STATE_FORMAT_VERSION = 2;

export function key(...parts: string[]): string {
  return parts.join(SEP);
}

/** Range bounds selecting every key that starts with `parts` followed by a separator. */
export function range(...parts: string[]): { gt: string; lt: string } {
  const prefix = key(...parts) + SEP;
  return { gt: prefix, lt: prefix + HIGH };
}

export const K = {
  /** Package metadata row (JSON), one per loaded version. */
  packageMeta: (type: string, version: string) => key('pkg', type, version),
  packageMetaRange: () => range('pkg'),
  /** The archive bytes of a loaded version, in format-1 directories (read, and deleted by unload; never written now). */
  archive: (type: string, version: string) => key('arc', type, version),
  /** Route pointer of a workflow type: the version new starts resolve. */
  route: (type: string) => key('route', type),
  routeRange: () => range('route'),
  /** Ramp of a workflow type (JSON `{version, percent}`); written in the batches that move routes. */
  ramp: (type: string) => key('ramp', type),
  rampRange: () => range('ramp'),
  /** Current run record of a workflow id (JSON). */
  run: (workflowId: string) => key('run', workflowId),
  runRange: () => range('run'),
  /** One history event of a run; `index` is zero-padded so keys sort in append order. */
  event: (runId: string, index: number) => key('hist', runId, String(index).padStart(10, '0')),
  eventRange: (runId: string) => range('hist', runId),
  /** Present while a workflow id's current run is active (not terminal). */
  active: (workflowId: string) => key('active', workflowId),
  activeRange: () => range('active'),
  /** Pin index: an active run pinning (type, version). */
  runPin: (type: string, version: string, workflowId: string) => key('pin', type, version, 'run', workflowId),
  /** Pin index: a child recorded by a parent with (type, version) whose history is still empty. */
  childPin: (type: string, version: string, childWorkflowId: string) => key('pin', type, version, 'child', childWorkflowId),
  pinRange: (type: string, version: string) => range('pin', type, version),
  /** Durable timers by fire time, for the engine's timer sweep. */
  timer: (fireAt: number, workflowId: string, seq: number) =>
    key('timer', String(fireAt).padStart(15, '0'), workflowId, String(seq).padStart(10, '0')),
  timerRange: () => range('timer'),
  /** Timers whose fire time is at or before `now`. */
  timersDueBy: (now: number) => ({ gt: range('timer').gt, lt: key('timer', String(now + 1).padStart(15, '0')) }),
  /**
   * Deploy audit log, in the order records were written: `s` + the directory's sequence number
   * (allocated by Store.write, see AuditAppend). Directories written before the sequence hold
   * keys `<at ms, 15 digits>\x00<pid>\x00<n>`; digits sort before `s`, so one range scan reads
   * those first, in their old order, then every sequenced record.
   */
  audit: (seq: number) => key('audit', 's' + String(seq).padStart(16, '0')),
  /** The sequence number of an audit key, 0 for a key of the old clock-ordered form. */
  auditSeq: (k: string): number => {
    const part = k.slice(k.indexOf(SEP) + 1);
    return part.startsWith('s') ? Number(part.slice(1)) : 0;
  },
  auditRange: () => range('audit'),
};
