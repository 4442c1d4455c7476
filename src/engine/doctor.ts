// `aion doctor`: a full consistency check of a state directory, and a repair of what is safe to
// repair. This is the slow path on purpose — it reads every row, archive, run record and
// history — so nothing on the hot path depends on it.
//
// Checked: package rows parse and agree with their keys; every row has an archive (its file
// under archives/, or in a format-1 directory its LevelDB copy) that reads and hashes to its
// version (and carries the row's manifest); no archive lacks a row; routes
// point at loaded versions; run records and histories parse and agree (event count, first
// event, terminal event); active markers match run status; the pin index is exactly what the
// runs imply (a run pin per running run, a child pin per child a running parent recorded but
// never started); every pending timer of a running run has its timer entry, and no other does;
// deploy records parse.
//
// Repaired with --repair, in one atomic batch, and only where the right content follows from
// what is intact: a route to a missing version is dropped; active markers, pins and timer
// entries are rebuilt from run records and histories; a corrupt package row is rebuilt from
// its archive when that archive verifies; archive files no row names (and temp files of an
// interrupted write) are removed. Histories, run records and archives a row names are never
// deleted or rewritten.
import { K } from '../store/keys.js';
import { ARCHIVES_DIR } from '../store/archives.js';
import { del, printableKey, putJSON, type Store } from '../store/store.js';
import type { BatchOp } from '../store/kv.js';
import type { WorkflowEvent } from '../runtime/history.js';
import { rowProblem, type PackageRow } from './restore.js';
import { workflowSpec } from '../package/manifest.js';
import { foldHistory, impliedIndex, type RunRecord } from './run-state.js';

export interface DoctorProblem {
  kind: string;
  /** The state-directory key at fault, `/`-separated. */
  key: string;
  message: string;
  repairable: boolean;
}

export interface DoctorReport {
  /** True when no problem remains (none found, or every one repaired). */
  ok: boolean;
  problems: DoctorProblem[];
  repaired: DoctorProblem[];
}

const decoder = new TextDecoder();
const HASH = /^[0-9a-f]{64}$/;
const TERMINAL: Record<string, WorkflowEvent['type']> = {
  completed: 'WorkflowCompleted',
  failed: 'WorkflowFailed',
  terminated: 'WorkflowTerminated',
};

function parse<T>(bytes: Uint8Array): T | undefined {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    return undefined;
  }
}

function split(key: string): string[] {
  return key.split('\x00');
}

/** Checks the state directory behind `store`; with `repair`, fixes what is safe and says what. */
export async function diagnose(store: Store, options: { repair?: boolean } = {}): Promise<DoctorReport> {
  const problems: DoctorProblem[] = [];
  const fixes = new Map<DoctorProblem, BatchOp[]>();
  const problem = (kind: string, key: string, message: string, fix?: BatchOp[]) => {
    const p: DoctorProblem = { kind, key: printableKey(key), message, repairable: fix !== undefined };
    problems.push(p);
    if (fix) fixes.set(p, fix);
  };
  const { readPackage, scanPackage, storedSource, storedArchiveLimits } = await import('../package/index.js');
  /** Orphan archive files to remove with --repair (they are not LevelDB keys). */
  const orphanFiles = new Map<DoctorProblem, string>();

  // --- packages and archives ---------------------------------------------------------------
  const loaded = new Set<string>();
  const rowKeys = new Set<string>();
  const files = store.archives?.list() ?? { versions: [], temps: [], others: [] };
  const stored = new Set(files.versions);
  for await (const [k, bytes] of store.entries(K.packageMetaRange())) {
    rowKeys.add(k);
    const [, type, version] = split(k) as [string, string, string];
    const label = `${type} ${version.slice(0, 12)}`;
    const row = parse<PackageRow>(bytes);
    const rowIssue = row === undefined ? 'not valid JSON' : rowProblem(k, row);
    // The archive: its file (format 2), else the LevelDB copy a format-1 directory holds.
    let archiveKey = K.archive(type, version);
    let pkg: { version: string; manifest: PackageRow['manifest']; manifestDigest: string; moduleNames: string[]; archiveBytes: number } | undefined;
    let archiveIssue: string | undefined;
    try {
      const opened = HASH.test(version) && stored.has(version) ? store.archives?.open(version) : undefined;
      const file = opened && storedSource(opened);
      if (file) {
        archiveKey = `${ARCHIVES_DIR}\x00${version}.aion`;
        try {
          const scanned = scanPackage(file, storedArchiveLimits(file.size));
          pkg = { version: scanned.version, manifest: scanned.manifest, manifestDigest: scanned.manifestDigest, moduleNames: [...scanned.modules.keys()], archiveBytes: scanned.archiveBytes };
        } finally {
          file.close();
        }
      } else {
        const legacy = await store.get(K.archive(type, version));
        if (!legacy) {
          archiveIssue = 'missing';
          if (HASH.test(version)) archiveKey = `${ARCHIVES_DIR}\x00${version}.aion`;
        } else {
          const read = readPackage(legacy, storedArchiveLimits(legacy.length));
          pkg = { version: read.version, manifest: read.manifest, manifestDigest: read.manifestDigest, moduleNames: [...read.modules.keys()], archiveBytes: legacy.length };
        }
      }
      if (pkg && pkg.version !== version) archiveIssue = `hashes to ${pkg.version.slice(0, 12)}, not its version`;
    } catch (error) {
      pkg = undefined;
      archiveIssue = `does not verify: ${(error as Error).message}`;
    }
    if (rowIssue !== undefined) {
      // The archive is the authority: a row that can be rebuilt from a verifying archive is.
      const row = pkg && !archiveIssue && HASH.test(version) ? rowFromPackage(pkg, type) : undefined;
      const rebuild = row ? [putJSON(k, row)] : undefined;
      problem('corrupt_package_row', k, `package row of ${label} is unusable (${rowIssue}); the version is invisible until it is repaired${rebuild ? ' (rebuildable from its archive)' : ''}`, rebuild);
      if (rebuild) loaded.add(`${type}\x00${version}`);
      continue;
    }
    if (archiveIssue === 'missing') {
      problem('missing_archive', archiveKey, `the archive of ${label} is missing: its runs cannot be recovered; load the archive again`);
      loaded.add(`${type}\x00${version}`);
      continue;
    }
    if (archiveIssue) {
      problem('corrupt_archive', archiveKey, `the archive of ${label} ${archiveIssue}; load the archive again`);
      loaded.add(`${type}\x00${version}`);
      continue;
    }
    if (pkg!.manifestDigest !== row!.manifest_digest) {
      problem('corrupt_archive', archiveKey, `the archive of ${label} carries another manifest than its row (digest ${pkg!.manifestDigest.slice(0, 12)}, row ${String(row!.manifest_digest).slice(0, 12)})`);
    }
    loaded.add(`${type}\x00${version}`);
  }
  for await (const k of store.keys({ gt: 'arc\x00', lt: 'arc\x00\xff' })) {
    const [, type, version] = split(k) as [string, string, string];
    if (!rowKeys.has(K.packageMeta(type, version))) {
      problem('orphan_archive', k, `an archive of ${type} ${version.slice(0, 12)} is stored without its package row (unload or load it again)`);
    }
  }
  // Archive files no row names: left by a load killed before its batch, or an unload killed
  // after it. Harmless (nothing reads them); removed by --repair, and by any writable command.
  const referenced = new Set([...rowKeys].map((k) => split(k)[2]!));
  for (const name of store.archives?.orphans(referenced) ?? []) {
    const what = name.endsWith('.aion') ? `an archive file of ${name.slice(0, 12)} that no package row names` : `a temp file of an archive write that never finished`;
    const p: DoctorProblem = { kind: 'orphan_archive', key: `${ARCHIVES_DIR}/${name}`, message: `${what} (left by an interrupted load or unload; removed by --repair or the next writable command)`, repairable: true };
    problems.push(p);
    orphanFiles.set(p, name);
  }

  // --- routes --------------------------------------------------------------------------------
  for await (const [k, bytes] of store.entries(K.routeRange())) {
    const type = k.slice(k.indexOf('\x00') + 1);
    const version = decoder.decode(bytes);
    if (!loaded.has(`${type}\x00${version}`)) {
      const what = HASH.test(version) ? `version ${version.slice(0, 12)}, which is not loaded` : 'a value that is not a version';
      problem('dangling_route', k, `the route of '${type}' points at ${what}; new starts of it fail until it is routed again`, [del(k)]);
    }
  }

  // --- ramps -------------------------------------------------------------------------------
  const routes = await store.routes();
  for await (const [k, bytes] of store.entries(K.rampRange())) {
    const type = k.slice(k.indexOf('\x00') + 1);
    let ramp: { version?: unknown; percent?: unknown } | undefined;
    try {
      ramp = JSON.parse(decoder.decode(bytes)) as { version?: unknown; percent?: unknown };
    } catch {
      ramp = undefined;
    }
    const version = typeof ramp?.version === 'string' ? ramp.version : undefined;
    const percentOk = typeof ramp?.percent === 'number' && ramp.percent > 0 && ramp.percent < 100;
    if (!version || !percentOk || !loaded.has(`${type}\x00${version}`) || routes.get(type) === version || !routes.has(type)) {
      problem('dangling_ramp', k, `the ramp of '${type}' is malformed or names a version that is not loaded or is routed; it is ignored and new starts go to the routed version`, [del(k)]);
    }
  }

  // --- runs, histories, markers, pins, timers ----------------------------------------------
  const runs = new Map<string, RunRecord>();
  /** Workflow ids whose record or history is damaged: their index entries are left alone. */
  const uncertain = new Set<string>();
  for await (const [k, bytes] of store.entries(K.runRange())) {
    const workflowId = k.slice(K.runRange().gt.length);
    const rec = parse<RunRecord>(bytes);
    if (!rec || typeof rec.run_id !== 'string' || typeof rec.version !== 'string' || typeof rec.workflow_type !== 'string' || typeof rec.events !== 'number') {
      problem('corrupt_run_record', k, `the run record of '${workflowId}' is unusable; its run cannot be shown or recovered`);
      uncertain.add(workflowId);
      continue;
    }
    runs.set(workflowId, rec);
  }
  const expectedPins = new Map<string, unknown>();
  const expectedTimers = new Map<string, unknown>();
  for (const [workflowId, rec] of runs) {
    const history: WorkflowEvent[] = [];
    let broken: string | undefined;
    let index = 0;
    for await (const [k, bytes] of store.entries(K.eventRange(rec.run_id))) {
      const expectedKey = K.event(rec.run_id, index);
      const event = parse<WorkflowEvent>(bytes);
      if (k !== expectedKey) broken ??= `event ${index} is missing`;
      else if (!event || typeof event.type !== 'string') broken ??= `event ${index} is not valid JSON`;
      else history.push(event);
      index++;
    }
    const first = history[0];
    if (!broken && history.length !== rec.events) broken = `the record says ${rec.events} events, the history has ${history.length}`;
    if (!broken && (first?.type !== 'WorkflowStarted' || first.run_id !== rec.run_id || first.package_version !== rec.version)) {
      broken = 'it does not start with the run\'s WorkflowStarted';
    }
    const terminal = TERMINAL[rec.status];
    if (!broken && terminal && history[history.length - 1]?.type !== terminal) broken = `the run is ${rec.status} but its history ends with ${history[history.length - 1]?.type}`;
    if (broken) {
      problem('corrupt_history', K.eventRange(rec.run_id).gt.slice(0, -1), `the history of '${workflowId}' (run ${rec.run_id}) is damaged: ${broken}`);
      uncertain.add(workflowId);
      continue;
    }
    const marker = K.active(workflowId);
    const markerValue = await store.get(marker);
    if (rec.status === 'running') {
      if (!markerValue || parse<{ run_id?: string }>(markerValue)?.run_id !== rec.run_id) {
        problem('missing_active_marker', marker, `'${workflowId}' is running but is not marked active: aion serve would not recover it`, [putJSON(marker, { run_id: rec.run_id })]);
      }
      if (!loaded.has(`${rec.workflow_type}\x00${rec.version}`)) {
        problem('run_version_not_loaded', K.run(workflowId), `'${workflowId}' runs on ${rec.workflow_type} ${rec.version.slice(0, 12)}, which is not loaded: load that archive again to recover it`);
      }
      // What the run implies is what the run writer writes: one definition (run-state.ts).
      const fold = foldHistory(history);
      for (const child of fold.children.values()) {
        const started = runs.get(child.childId);
        // A child whose own record is damaged is not judged: neither pin is expected nor stale.
        child.started = uncertain.has(child.childId) || started?.parent?.run_id === rec.run_id;
      }
      for (const [k, value] of impliedIndex(rec, fold)) {
        if (k.startsWith('pin\x00')) expectedPins.set(k, value);
        else if (k.startsWith('timer\x00')) expectedTimers.set(k, value);
      }
    } else if (markerValue) {
      problem('stale_active_marker', marker, `'${workflowId}' is ${rec.status} but still marked active`, [del(marker)]);
    }
  }
  for await (const k of store.keys(K.activeRange())) {
    const workflowId = k.slice(K.activeRange().gt.length);
    if (!runs.has(workflowId) && !uncertain.has(workflowId)) problem('stale_active_marker', k, `'${workflowId}' is marked active but has no run record`, [del(k)]);
  }

  // Pins: compare the index with what the runs imply.
  const seenPins = new Set<string>();
  for await (const [k, bytes] of store.entries({ gt: 'pin\x00', lt: 'pin\x00\xff' })) {
    seenPins.add(k);
    const [, type, version, kind, id] = split(k) as [string, string, string, string, string];
    const value = parse<Record<string, string>>(bytes);
    const owner = kind === 'run' ? id : value?.recorded_by;
    const expected = expectedPins.get(k);
    if (expected === undefined) {
      if (owner === undefined ? uncertain.size > 0 : uncertain.has(owner) || (kind === 'child' && uncertain.has(id))) continue;
      problem('stale_pin', k, `${kind === 'run' ? 'run' : 'recorded-child'} pin of '${id}' on ${type} ${version.slice(0, 12)} has no running ${kind === 'run' ? 'run' : 'parent'} behind it: it blocks unload for nothing`, [del(k)]);
    } else if (kind === 'run' && value?.run_id !== (expected as { run_id: string }).run_id) {
      problem('corrupt_pin', k, `run pin of '${id}' on ${type} ${version.slice(0, 12)} names another run`, [putJSON(k, expected)]);
    }
  }
  for (const [k, value] of expectedPins) {
    if (seenPins.has(k)) continue;
    const [, type, version, kind, id] = split(k) as [string, string, string, string, string];
    problem('missing_pin', k, `${kind === 'run' ? 'running' : 'recorded child'} '${id}' does not pin ${type} ${version.slice(0, 12)}: an unload could remove the version it needs`, [putJSON(k, value)]);
  }

  // Timers.
  const seenTimers = new Set<string>();
  for await (const k of store.keys(K.timerRange())) {
    seenTimers.add(k);
    const workflowId = split(k)[2]!;
    if (!expectedTimers.has(k) && !uncertain.has(workflowId)) problem('stale_timer', k, `timer entry of '${workflowId}' belongs to no pending timer of a running run`, [del(k)]);
  }
  for (const [k, value] of expectedTimers) {
    if (!seenTimers.has(k)) problem('missing_timer', k, `a pending timer of '${split(k)[2]}' has no timer entry: aion serve would not wake it`, [putJSON(k, value)]);
  }

  // Deploy history.
  for await (const [k, bytes] of store.entries(K.auditRange())) {
    if (parse(bytes) === undefined) problem('corrupt_deploy_record', k, 'a deploy history record is not valid JSON (it is skipped by aion history)');
  }

  const repaired: DoctorProblem[] = [];
  if (options.repair && fixes.size > 0) {
    await store.write([...fixes.values()].flat(), { sync: true });
    repaired.push(...fixes.keys());
  }
  if (options.repair) {
    for (const [p, name] of orphanFiles) {
      await store.archives?.removeFile(name);
      repaired.push(p);
    }
  }
  return { ok: problems.length === repaired.length, problems, repaired };
}

/**
 * The row of one workflow type of a verified package (its own type, or one of its additional
 * ones, as a load writes them), or undefined when the package does not export `type`.
 */
function rowFromPackage(pkg: { manifest: PackageRow['manifest']; version: string; manifestDigest: string; moduleNames: string[]; archiveBytes: number }, type: string): PackageRow | undefined {
  let spec;
  try {
    spec = workflowSpec(pkg.manifest, type);
  } catch {
    return undefined; // malformed additional workflows: nothing to rebuild from
  }
  if (spec === undefined) return undefined;
  return {
    workflow_type: type,
    version: pkg.version,
    manifest: pkg.manifest,
    manifest_digest: pkg.manifestDigest,
    deployed_entry_module: `${spec.entry_module}$${pkg.version}`,
    entry_function: spec.entry_function,
    loaded_at: new Date().toISOString(),
    module_names: [...pkg.moduleNames],
    archive_bytes: pkg.archiveBytes,
  };
}
