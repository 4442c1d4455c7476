// Shared machinery of the reliability tests: running bin/aion with a fault point or a timed
// SIGKILL, dumping a state directory's LevelDB content, and an oracle that checks a dump
// against the invariants a crash must never break (independent of `aion doctor`, which the
// tests cross-check against it).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { BIN, ROOT, type CliResult } from '../helpers/cli.js';
import { readPackage } from '../../src/package/index.js';

/** `AION_FAULTS=full` (npm run test:faults) runs every scenario at full size; else a bounded form. */
export const FULL = process.env.AION_FAULTS === 'full';

// --- statistics ------------------------------------------------------------------------------

export interface Stats {
  suite: string;
  operations: number;
  faults: number;
  failures: string[];
  extra: Record<string, number>;
}

export function newStats(suite: string): Stats {
  return { suite, operations: 0, faults: 0, failures: [], extra: {} };
}

/** Prints a one-line summary, and appends it to $AION_FAULTS_STATS for the runner's total. */
export function report(stats: Stats): void {
  const extra = Object.entries(stats.extra).map(([k, v]) => `, ${k} ${v}`).join('');
  process.stdout.write(
    `[${stats.suite}] operations tried ${stats.operations}, faults injected ${stats.faults}, failures found ${stats.failures.length}${extra}\n`,
  );
  for (const f of stats.failures.slice(0, 20)) process.stdout.write(`  failure: ${f}\n`);
  const file = process.env.AION_FAULTS_STATS;
  if (file) appendFileSync(file, JSON.stringify({ ...stats, failures: stats.failures.slice(0, 50), failureCount: stats.failures.length }) + '\n');
}

// --- processes -------------------------------------------------------------------------------

export interface RunResult extends CliResult {
  pid: number;
  signal: NodeJS.Signals | null;
  killed: boolean;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Send SIGKILL after this many milliseconds (if still running). */
  killAfterMs?: number;
  /** Extra node flags (e.g. a heap cap). */
  nodeArgs?: string[];
  timeoutMs?: number;
}

/**
 * Runs `aion ...args` as a child process; reports whether it died of SIGKILL. Others rebuild
 * the shared dist/ while tests run: a process that could not even start (half-written
 * modules) is retried a few times, since it never touched the state directory.
 */
export async function runAion(args: string[], options: RunOptions = {}): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await runAionOnce(args, options);
    const broken = r.code === 1 && /aion: cannot start|does not provide an export named|ERR_MODULE_NOT_FOUND|Cannot find module/.test(r.stderr);
    if (!broken || attempt >= 4) return r;
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

function runAionOnce(args: string[], options: RunOptions): Promise<RunResult> {
  const env = { ...process.env, ...options.env };
  delete env.FORCE_COLOR;
  if (!options.env?.AION_FAULT_POINT) delete env.AION_FAULT_POINT;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timers: NodeJS.Timeout[] = [];
    if (options.killAfterMs !== undefined) timers.push(setTimeout(() => child.kill('SIGKILL'), options.killAfterMs));
    timers.push(setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, pid: child.pid ?? -1, signal, killed: signal === 'SIGKILL', stdout, stderr, json, ms: Date.now() - started });
    });
  });
}

/** Runs `fn` over `items` with at most `width` in flight. */
export async function pool<T>(items: T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}

export function tempDir(prefix = 'aion-faults-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function copyState(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}

export { rng } from '../helpers/random.js';

// --- state dumps -----------------------------------------------------------------------------

export type Dump = Map<string, Uint8Array>;

/** Archive files appear in a dump as `afile\x00<file name>` (see dumpState). */
export const ARCHIVE_FILE = 'afile';

/**
 * Every key and value of a state directory's database (empty when it does not exist), and
 * every file of its archives directory as `afile\x00<name>` → its bytes.
 */
export async function dumpState(stateDir: string): Promise<Dump> {
  const dump: Dump = new Map();
  const archives = path.join(stateDir, 'archives');
  if (existsSync(archives)) for (const name of readdirSync(archives)) dump.set(`${ARCHIVE_FILE}\x00${name}`, new Uint8Array(readFileSync(path.join(archives, name))));
  const dbDir = path.join(stateDir, 'db');
  if (!existsSync(dbDir)) return dump;
  const db = new Level<string, Uint8Array>(dbDir, { keyEncoding: 'utf8', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  try {
    for await (const [k, v] of db.iterator()) dump.set(k, new Uint8Array(v));
  } finally {
    await db.close();
  }
  return dump;
}

/** A digest of a dump: equal digests, equal databases. */
export function dumpDigest(dump: Dump, filter: (key: string) => boolean = () => true): string {
  const h = createHash('sha256');
  for (const k of [...dump.keys()].sort()) {
    if (!filter(k)) continue;
    const v = dump.get(k)!;
    h.update(`${k.length}:${k}:${v.length}:`);
    h.update(v);
  }
  return h.digest('hex');
}

const dec = new TextDecoder();
const space = (k: string) => k.slice(0, k.indexOf('\x00'));
const parts = (k: string) => k.split('\x00');

function json(v: Uint8Array | undefined): any {
  if (v === undefined) return undefined;
  return JSON.parse(dec.decode(v));
}

export const RUN_SPACES = new Set(['run', 'hist', 'active', 'pin', 'timer']);
export const DEPLOY_SPACES = new Set(['pkg', 'arc', ARCHIVE_FILE, 'route', 'ramp', 'audit']);

/**
 * The deploy state of a dump, normalized: what is loaded (type, version, manifest digest,
 * archive digest), where routes point, and the deploy history (operation, type, version,
 * previous) in order. Timestamps and pids are left out so that two equivalent histories
 * compare equal.
 */
export function deployView(dump: Dump): string {
  const packages: string[] = [];
  const routes: string[] = [];
  const audit: string[] = [];
  for (const [k, v] of [...dump.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const s = space(k);
    if (s === 'pkg') {
      let digest = '?';
      try {
        digest = json(v).manifest_digest;
      } catch {
        digest = 'corrupt';
      }
      packages.push(`${parts(k).slice(1).join('/')} ${digest}`);
    } else if (s === 'arc') {
      packages.push(`arc ${parts(k).slice(1).join('/')} ${createHash('sha256').update(v).digest('hex').slice(0, 16)}`);
    } else if (s === ARCHIVE_FILE) {
      // A file no row names is crash residue (removed by the next writable open), not state.
      const version = parts(k)[1]!.replace(/\.aion$/, '');
      if ([...dump.keys()].some((key) => key.startsWith('pkg\x00') && key.endsWith(`\x00${version}`))) {
        packages.push(`file ${version} ${createHash('sha256').update(v).digest('hex').slice(0, 16)}`);
      }
    } else if (s === 'route') {
      routes.push(`${parts(k)[1]} -> ${dec.decode(v)}`);
    } else if (s === 'ramp') {
      routes.push(`ramp ${parts(k)[1]} -> ${dec.decode(v)}`);
    } else if (s === 'audit') {
      const r = json(v);
      audit.push(`${r.operation} ${r.workflow_type} ${r.version} prev=${r.previous}`);
    }
  }
  return JSON.stringify({ packages, routes, audit });
}

/** Digest of everything the run lifecycle owns (runs, histories, markers, pins, timers). */
export function runDigest(dump: Dump): string {
  return dumpDigest(dump, (k) => RUN_SPACES.has(space(k)));
}

const TERMINAL_EVENT: Record<string, string> = {
  completed: 'WorkflowCompleted',
  failed: 'WorkflowFailed',
  terminated: 'WorkflowTerminated',
};

/**
 * Archive files of a dump that no package row names, and temp files of unfinished writes:
 * what a crash between a file and its batch leaves (allowed), and what the next writable
 * command must remove.
 */
export function orphanArchiveFiles(dump: Dump): string[] {
  const versions = new Set([...dump.keys()].filter((k) => space(k) === 'pkg').map((k) => parts(k)[2]!));
  return [...dump.keys()]
    .filter((k) => space(k) === ARCHIVE_FILE)
    .map((k) => parts(k)[1]!)
    .filter((name) => !name.endsWith('.aion') || !versions.has(name.slice(0, -'.aion'.length)));
}

/**
 * Checks a dump against the invariants; returns the problems found (empty: consistent).
 * - every package row parses and has an archive (its file, or in a format-1 directory its
 *   LevelDB copy) that reads and hashes to its version; no LevelDB archive without a row
 *   (archive files without one are crash residue: see orphanArchiveFiles); every route
 *   points at a loaded version of its type;
 * - every run record parses; its current history is complete (0..events-1) and starts with
 *   its WorkflowStarted; a running run has its active marker, a finished one ends with its
 *   terminal event and has none;
 * - the pin index is exactly what the runs imply: one run pin per running run on its
 *   recorded version, one child pin per child a running parent recorded but never started;
 * - every pending timer of a running run has its timer entry, and no other timer entry exists.
 */
export function checkInvariants(dump: Dump): string[] {
  const problems: string[] = [];
  const loaded = new Set<string>();
  const rows = new Map<string, any>();
  for (const [k, v] of dump) {
    const s = space(k);
    if (s === 'pkg') {
      const [, type, version] = parts(k);
      let row: any;
      try {
        row = json(v);
      } catch {
        problems.push(`package row ${type}/${version} does not parse`);
        continue;
      }
      if (row.workflow_type !== type || row.version !== version) problems.push(`package row ${type}/${version} disagrees with its key`);
      rows.set(`${type}\x00${version}`, row);
      const archive = dump.get(`${ARCHIVE_FILE}\x00${version}.aion`) ?? dump.get(`arc\x00${type}\x00${version}`);
      if (!archive) {
        problems.push(`package ${type}/${version} has no archive`);
        continue;
      }
      try {
        const pkg = readPackage(archive);
        if (pkg.version !== version) problems.push(`archive of ${type}/${version} hashes to ${pkg.version}`);
        if (pkg.manifestDigest !== row.manifest_digest) problems.push(`archive of ${type}/${version} has another manifest than its row`);
      } catch (error) {
        problems.push(`archive of ${type}/${version} does not verify: ${(error as Error).message}`);
        continue;
      }
      loaded.add(`${type}\x00${version}`);
    } else if (s === 'arc') {
      const [, type, version] = parts(k);
      if (!dump.has(`pkg\x00${type}\x00${version}`)) problems.push(`archive ${type}/${version} has no package row`);
    } else if (s === 'route') {
      const type = parts(k)[1]!;
      const version = dec.decode(v);
      if (!loaded.has(`${type}\x00${version}`) && !rows.has(`${type}\x00${version}`) && !dump.has(`pkg\x00${type}\x00${version}`)) {
        problems.push(`route ${type} points at ${version.slice(0, 12)}, which is not loaded`);
      }
    }
  }
  for (const [k, v] of dump) {
    if (space(k) !== 'ramp') continue;
    const type = parts(k)[1]!;
    let ramp: { version?: string; percent?: number } = {};
    try {
      ramp = json(v);
    } catch {
      problems.push(`ramp of ${type} does not parse`);
      continue;
    }
    const routed = dump.get(`route\x00${type}`);
    if (!dump.has(`pkg\x00${type}\x00${ramp.version}`)) problems.push(`ramp of ${type} points at ${String(ramp.version).slice(0, 12)}, which is not loaded`);
    if (!routed) problems.push(`ramp of ${type} without a route`);
    else if (dec.decode(routed) === ramp.version) problems.push(`ramp of ${type} points at its routed version`);
  }

  const expectedPins = new Map<string, string>();
  const expectedTimers = new Set<string>();
  const runs = new Map<string, any>();
  for (const [k, v] of dump) {
    if (space(k) !== 'run') continue;
    const wid = k.slice(4);
    try {
      runs.set(wid, json(v));
    } catch {
      problems.push(`run record ${wid} does not parse`);
    }
  }
  for (const [wid, rec] of runs) {
    const history: any[] = [];
    for (let i = 0; ; i++) {
      const e = dump.get(`hist\x00${rec.run_id}\x00${String(i).padStart(10, '0')}`);
      if (!e) break;
      try {
        history.push(json(e));
      } catch {
        problems.push(`run ${wid}: event ${i} does not parse`);
        history.push({ type: '?' });
      }
    }
    const extra = [...dump.keys()].filter((k) => k.startsWith(`hist\x00${rec.run_id}\x00`)).length - history.length;
    if (extra > 0) problems.push(`run ${wid}: history has a gap (${extra} events after it)`);
    if (history.length !== rec.events) problems.push(`run ${wid}: record says ${rec.events} events, history has ${history.length}`);
    const first = history[0];
    if (!first || first.type !== 'WorkflowStarted' || first.run_id !== rec.run_id || first.package_version !== rec.version) {
      problems.push(`run ${wid}: history does not start with its WorkflowStarted`);
    }
    const marker = dump.get(`active\x00${wid}`);
    if (rec.status === 'running') {
      if (!marker) problems.push(`run ${wid} is running without an active marker`);
      else if (json(marker).run_id !== rec.run_id) problems.push(`run ${wid}: active marker names another run`);
      if (!rows.has(`${rec.workflow_type}\x00${rec.version}`)) problems.push(`run ${wid} is running on ${rec.workflow_type}/${rec.version.slice(0, 12)}, which is not loaded`);
      expectedPins.set(`pin\x00${rec.workflow_type}\x00${rec.version}\x00run\x00${wid}`, rec.run_id);
      const fired = new Set(history.filter((e) => e.type === 'TimerFired').map((e) => e.seq));
      const resolved = new Set(history.filter((e) => e.type === 'ChildWorkflowCompleted' || e.type === 'ChildWorkflowFailed').map((e) => e.seq));
      for (const e of history) {
        if (e.type === 'TimerStarted' && !fired.has(e.seq)) {
          expectedTimers.add(`timer\x00${String(e.fire_at).padStart(15, '0')}\x00${wid}\x00${String(e.seq).padStart(10, '0')}`);
        }
        if (e.type === 'ChildWorkflowStarted' && !resolved.has(e.seq)) {
          const child = runs.get(e.child_workflow_id);
          if (!child || child.parent?.run_id !== rec.run_id) {
            expectedPins.set(`pin\x00${e.workflow_type}\x00${e.package_version}\x00child\x00${e.child_workflow_id}`, `child of ${wid}`);
          }
        }
      }
    } else {
      if (marker) problems.push(`run ${wid} is ${rec.status} but still has an active marker`);
      const last = history[history.length - 1];
      const want = TERMINAL_EVENT[rec.status];
      if (want && last?.type !== want) problems.push(`run ${wid} is ${rec.status} but its history ends with ${last?.type}`);
    }
  }
  for (const [k] of dump) {
    const s = space(k);
    if (s === 'active' && !runs.has(k.slice(7))) problems.push(`active marker ${k.slice(7)} has no run record`);
    if (s === 'pin' && !expectedPins.has(k)) problems.push(`stale pin ${parts(k).slice(1).join('/')}`);
    if (s === 'timer' && !expectedTimers.has(k)) problems.push(`stale timer ${parts(k).slice(1).join('/')}`);
  }
  for (const [k, runId] of expectedPins) {
    const v = dump.get(k);
    if (!v) problems.push(`missing pin ${parts(k).slice(1).join('/')}`);
    else if (parts(k)[3] === 'run' && json(v).run_id !== runId) problems.push(`pin ${parts(k).slice(1).join('/')} names another run`);
  }
  for (const k of expectedTimers) if (!dump.has(k)) problems.push(`missing timer ${parts(k).slice(1).join('/')}`);
  return problems;
}

/** Histories are append-only: every event in `before` is in `after`, byte for byte. */
export function lostEvents(before: Dump, after: Dump): string[] {
  const lost: string[] = [];
  for (const [k, v] of before) {
    if (space(k) !== 'hist') continue;
    const now = after.get(k);
    if (!now || Buffer.compare(Buffer.from(now), Buffer.from(v)) !== 0) lost.push(parts(k).slice(1).join('/'));
  }
  return lost;
}

/** A run's record from a dump. */
export function runOf(dump: Dump, workflowId: string): any {
  return json(dump.get(`run\x00${workflowId}`));
}
