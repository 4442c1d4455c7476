// Benchmark plumbing: timing child processes, medians, the results table. Only Node APIs.
// This module only exports; the test runner (which spawns every .js file under dist/test)
// finds nothing to do in it.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** dist/test/bench → the repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'aion');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const WORKER = path.join(BENCH_DIR, 'worker.js');
/** Preloaded (`--import`) into a child to report its peak RSS. */
export const PROBE_URL = pathToFileURL(path.join(BENCH_DIR, 'probe.js')).href;

/** True inside `node --test`, which executes every .js file under dist/test. */
export const UNDER_TEST_RUNNER = process.env.NODE_TEST_CONTEXT !== undefined;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface ChildRun {
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the child in bytes (only with `probe`). */
  maxRssBytes?: number;
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Preload the RSS probe; its report lands in `maxRssBytes`. */
  probe?: boolean;
  /** Extra node flags, before the script. */
  nodeFlags?: string[];
}

let probeSeq = 0;

/** Runs `node [flags] script ...args` and times it from spawn to exit. */
export function runNode(script: string | null, args: string[], options: ChildOptions = {}): Promise<ChildRun> {
  const flags = [...(options.nodeFlags ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env.FORCE_COLOR;
  delete env.NODE_OPTIONS;
  let probeFile: string | undefined;
  if (options.probe) {
    probeFile = path.join(os.tmpdir(), `aion-bench-rss-${process.pid}-${probeSeq++}`);
    flags.push('--import', PROBE_URL);
    env.AION_BENCH_RSS_OUT = probeFile;
  }
  const argv = script === null ? [...flags, ...args] : [...flags, script, ...args];
  return new Promise((resolve, reject) => {
    const start = nowMs();
    let exitedAt = 0;
    const child = spawn(process.execPath, argv, { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('exit', () => {
      exitedAt = nowMs();
    });
    child.on('close', (code) => {
      const result: ChildRun = {
        ms: (exitedAt || nowMs()) - start,
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (probeFile) {
        try {
          // The probe reports kilobytes (VmHWM, or resourceUsage().maxRSS where there is no procfs).
          result.maxRssBytes = Number(readFileSync(probeFile, 'utf8')) * 1024;
        } catch {
          // The child died before its exit hook ran; the caller sees the exit code.
        }
        rmSync(probeFile, { force: true });
      }
      resolve(result);
    });
  });
}

/** `aion ...args` through bin/aion, exactly as a shell would start it. */
export function runAion(args: string[], options: ChildOptions = {}): Promise<ChildRun> {
  return runNode(BIN, args, options);
}

/** Runs a worker subcommand and parses the JSON it prints. Throws when it fails. */
export async function runWorker<T>(args: string[], options: ChildOptions = {}): Promise<T & { maxRssBytes?: number; ms: number }> {
  const r = await runNode(WORKER, args, options);
  if (r.code !== 0) throw new Error(`bench worker ${args[0]} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return { ...(JSON.parse(r.stdout) as T), maxRssBytes: r.maxRssBytes, ms: r.ms };
}

export function expectCode(r: ChildRun, code: number, what: string): void {
  if (r.code !== code) {
    throw new Error(`${what}: expected exit ${code}, got ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`);
  }
}

// --- results ---------------------------------------------------------------------------------

export interface Figure {
  id: string;
  figure: string;
  baseline: string;
  unit: 'ms' | 'MB' | 'KB' | 'runs/s' | 'steps/s';
  subject_median: number;
  /** Null for a figure reported on its own (no baseline, no target). */
  baseline_median: number | null;
  /** subject_median / baseline_median (null without a baseline). */
  ratio: number | null;
  /** Null: a figure reported without a target. */
  target: { op: '<=' | '>='; ratio: number } | null;
  verdict: 'met' | 'missed' | 'reported';
  samples: { subject: number[]; baseline: number[] };
  notes?: string;
}

export function figure(f: Omit<Figure, 'subject_median' | 'baseline_median' | 'ratio' | 'verdict'>): Figure {
  const s = median(f.samples.subject);
  if (f.samples.baseline.length === 0 || f.target === null) {
    const b = f.samples.baseline.length === 0 ? null : median(f.samples.baseline);
    return { ...f, subject_median: round(s), baseline_median: b === null ? null : round(b), ratio: b === null ? null : round(s / b, 3), verdict: 'reported' };
  }
  const b = median(f.samples.baseline);
  const ratio = s / b;
  const met = f.target.op === '<=' ? ratio <= f.target.ratio : ratio >= f.target.ratio;
  return { ...f, subject_median: round(s), baseline_median: round(b), ratio: round(ratio, ratio < 0.1 ? 5 : 3), verdict: met ? 'met' : 'missed' };
}

export function round(x: number, digits = 2): number {
  const p = 10 ** digits;
  return Math.round(x * p) / p;
}

function fmt(x: number, unit: string): string {
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return `${x.toFixed(digits)} ${unit}`;
}

/** A plain-text table: figure, median, baseline median, ratio, target, verdict. */
export function renderTable(figures: readonly Figure[]): string {
  const header = ['figure', 'median', 'baseline (median)', 'ratio', 'target', 'verdict'];
  const rows = figures.map((f) => [
    f.figure,
    fmt(f.subject_median, f.unit),
    f.baseline_median === null ? f.baseline : `${fmt(f.baseline_median, f.unit)}  ${f.baseline}`,
    f.ratio === null ? '—' : `${f.ratio >= 0.1 || f.ratio === 0 ? f.ratio.toFixed(2) : f.ratio.toPrecision(2)}×`,
    f.target === null ? '—' : `${f.target.op === '<=' ? '≤' : '≥'} ${f.target.ratio}×`,
    f.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function machine() {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    total_memory_mb: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** Runs `a` and `b` alternately `reps` times (so drift on a shared machine hits both alike). */
export async function interleave<A, B>(reps: number, a: () => Promise<A>, b: () => Promise<B>): Promise<{ a: A[]; b: B[] }> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let i = 0; i < reps; i++) {
    if (i % 2 === 0) {
      as.push(await a());
      bs.push(await b());
    } else {
      bs.push(await b());
      as.push(await a());
    }
  }
  return { a: as, b: bs };
}
