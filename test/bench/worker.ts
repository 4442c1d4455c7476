// Benchmark subjects and baselines that run in a fresh process of their own, started by run.ts:
//   baseline-load <archive>                       read + unzip (fflate) + SHA-256 of the modules
//   throughput <state_dir> <archive> <n> <template_out>
//                                                 n sequential starts of a trivial workflow
//   append <db_dir> <n> <template>                the same batches, written to LevelDB directly
//                                                 (same keys, sizes and sync flags)
//   flip <state_dir> <base_archive> <starts> <flip_archive>...
//                                                 start latency under 8 concurrent starters,
//                                                 without and during route flips
//   steps <state_dir> <stepper_archive> <n> <count>
//                                                 `count` sequential runs of n activity steps
//   step-time <state_dir> <stepper_archive> <n> <template_out>
//                                                 one run of n steps; then, with the engine
//                                                 closed, the run's history and run record read
//                                                 back from the state directory and grouped into
//                                                 one batch per step (the bare baseline)
//   step-append <db_dir> <template>               those per-step batches, written to LevelDB
//                                                 directly (same keys and sizes, sync:false)
//   parked <state_dir> <approval_archive> <count> RSS before/after `count` runs parked on
//                                                 ctx.signal in one engine (run with --expose-gc)
// Each prints one JSON document on stdout. Under `node --test` (which executes every .js file
// under dist/test) it does nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { unzipSync } from 'fflate';
import { Level } from 'level';
import { Engine } from '../../src/engine/engine.js';
import { openLevel } from '../../src/store/level.js';
import type { BatchOp, KV, RangeOptions } from '../../src/store/kv.js';
import { K } from '../../src/store/keys.js';
import { median, nowMs, UNDER_TEST_RUNNER } from './lib.js';

type Template = { workflowId: string; runId: string; batches: { type: 'put' | 'del'; key: string; value?: string }[][]; sync?: boolean[] };

/** Remembers the batches written since the last `reset`. */
class RecordingKV implements KV {
  batches: BatchOp[][] = [];
  /** The sync flag of each batch (a start is synced before it is reported: the baseline does the same). */
  syncs: boolean[] = [];
  constructor(private readonly inner: KV) {}
  get(key: string) {
    return this.inner.get(key);
  }
  getMany(keys: string[]) {
    return this.inner.getMany(keys);
  }
  batch(ops: BatchOp[], options: { sync: boolean }) {
    this.batches.push(ops);
    this.syncs.push(options.sync);
    return this.inner.batch(ops, options);
  }
  entries(range: RangeOptions) {
    return this.inner.entries(range);
  }
  keys(range: RangeOptions) {
    return this.inner.keys(range);
  }
  close() {
    return this.inner.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

async function baselineLoad(archive: string): Promise<void> {
  const t0 = nowMs();
  const bytes = readFileSync(archive);
  const files = unzipSync(bytes);
  const hash = createHash('sha256');
  let modules = 0;
  let inflated = 0;
  for (const [name, data] of Object.entries(files)) {
    if (!name.startsWith('modules/')) continue;
    hash.update(data);
    modules++;
    inflated += data.length;
  }
  print({ modules, inflated, digest: hash.digest('hex'), inner_ms: nowMs() - t0 });
}

async function throughput(stateDir: string, archive: string, n: number, templateOut: string): Promise<void> {
  const kv = new RecordingKV(await openLevel(stateDir, { lockTimeoutMs: 30_000 }));
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 30_000, kv });
  try {
    const loaded = await engine.loadPackage({ path: archive });
    const type = loaded.workflow_type;
    for (let i = 0; i < Math.min(200, n); i++) await engine.runs.start(type, { name: `warm-${i}` });
    kv.batches = [];
    kv.syncs = [];
    const t0 = nowMs();
    let last = { workflow_id: '', run_id: '' };
    for (let i = 0; i < n; i++) {
      const out = await engine.runs.start(type, { name: `n-${i}` });
      if (out.status !== 'completed') throw new Error(`run ${out.workflow_id} ended ${out.status}`);
      last = out;
    }
    const ms = nowMs() - t0;
    // The batches of the last run are the template the bare-LevelDB baseline replays: from its
    // first batch to the end (the flush that makes its start durable included), with the same
    // sync flags.
    const first = kv.batches.findIndex((b) => b.some((op) => op.key.includes(last.workflow_id) || op.key.includes(last.run_id)));
    const mine = kv.batches.slice(first);
    const template: Template = {
      workflowId: last.workflow_id,
      runId: last.run_id,
      batches: mine.map((b) => b.map((op) => (op.type === 'put' ? { type: 'put', key: op.key, value: Buffer.from(op.value).toString('base64') } : { type: 'del', key: op.key }))),
      sync: kv.syncs.slice(first),
    };
    writeFileSync(templateOut, JSON.stringify(template));
    const opsTotal = kv.batches.reduce((s, b) => s + b.length, 0);
    const bytesTotal = kv.batches.reduce((s, b) => s + b.reduce((t, op) => t + op.key.length + (op.type === 'put' ? op.value.length : 0), 0), 0);
    print({ runs: n, ms, runs_per_s: (n * 1000) / ms, batches_per_run: kv.batches.length / n, ops_per_run: opsTotal / n, bytes_per_run: bytesTotal / n });
  } finally {
    await engine.close();
  }
}

async function append(dbDir: string, n: number, templateFile: string): Promise<void> {
  const template = JSON.parse(readFileSync(templateFile, 'utf8')) as Template;
  const batches = template.batches.map((b) => b.map((op) => ({ ...op, value: op.value === undefined ? undefined : Buffer.from(op.value, 'base64') })));
  const db = new Level<string, Uint8Array>(dbDir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  const idLength = template.workflowId.length;
  const write = async (i: number) => {
    const wf = `w${i}`.padEnd(idLength, 'x');
    const run = `${String(i).padStart(8, '0')}${template.runId.slice(8)}`;
    for (const [k, b] of batches.entries()) {
      const ops = b.map((op) => {
        const key = op.key.replace(template.workflowId, wf).replace(template.runId, run);
        return op.type === 'put' ? { type: 'put' as const, key, value: op.value! } : { type: 'del' as const, key };
      });
      await db.batch(ops, { sync: template.sync?.[k] ?? false });
    }
  };
  try {
    for (let i = 0; i < Math.min(200, n); i++) await write(-1 - i);
    let ops = 0;
    let bytes = 0;
    for (const b of batches) for (const op of b) (ops++, (bytes += op.key.length + (op.value?.length ?? 0)));
    const t0 = nowMs();
    for (let i = 0; i < n; i++) await write(i);
    const ms = nowMs() - t0;
    print({ runs: n, ms, runs_per_s: (n * 1000) / ms, batches_per_run: batches.length, ops_per_run: ops, bytes_per_run: bytes });
  } finally {
    await db.close();
  }
}

async function flip(stateDir: string, baseArchive: string, startsPerLoop: number, flipArchives: string[]): Promise<void> {
  // AION_BENCH_STORE: the same figure on a store URL (test/bench/pg.ts).
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 30_000, store: process.env.AION_BENCH_STORE || undefined });
  const LOOPS = 8;
  try {
    const { workflow_type: type } = await engine.loadPackage({ path: baseArchive });
    const flipBytes = flipArchives.map((f) => readFileSync(f));
    const latencies: { start: number; end: number }[] = [];
    let stop = false;
    const loop = async (k: number, count: number) => {
      for (let i = 0; stop === false && (count < 0 || i < count); i++) {
        const start = nowMs();
        await engine.runs.start(type, { name: `l${k}-${i}` });
        latencies.push({ start, end: nowMs() });
      }
    };
    // Warm-up, then the no-flip phase.
    await Promise.all(Array.from({ length: LOOPS }, (_, k) => loop(k, 20)));
    latencies.length = 0;
    await Promise.all(Array.from({ length: LOOPS }, (_, k) => loop(k, startsPerLoop)));
    const noFlip = latencies.map((l) => l.end - l.start);
    latencies.length = 0;

    // Flip phase: the starters keep going while each load flips the route.
    const loops = Array.from({ length: LOOPS }, (_, k) => loop(k, -1));
    const windows: { t0: number; t1: number }[] = [];
    for (const bytes of flipBytes) {
      await new Promise((r) => setTimeout(r, 60));
      const t0 = nowMs();
      const out = await engine.loadPackage({ bytes });
      if (!out.route_changed) throw new Error('the load did not flip the route');
      windows.push({ t0, t1: nowMs() });
    }
    await new Promise((r) => setTimeout(r, 60));
    stop = true;
    await Promise.all(loops);
    const stalls = windows.map(({ t0, t1 }) => {
      const overlapping = latencies.filter((l) => l.start < t1 && l.end > t0).map((l) => l.end - l.start);
      return Math.max(0, ...overlapping);
    });
    print({
      no_flip_latencies_ms: noFlip,
      no_flip_median_ms: median(noFlip),
      flip_stalls_ms: stalls,
      flip_load_ms: windows.map((w) => w.t1 - w.t0),
      flip_phase_median_ms: median(latencies.map((l) => l.end - l.start)),
    });
  } finally {
    await engine.close();
  }
}

/** Opens an engine on a fresh state directory and loads one archive; returns its type. */
async function engineWith(stateDir: string, archive: string): Promise<{ engine: Engine; type: string }> {
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 30_000 });
  try {
    const loaded = await engine.loadPackage({ path: archive });
    return { engine, type: loaded.workflow_type };
  } catch (error) {
    await engine.close();
    throw error;
  }
}

/** Runs a `stepper` workflow of n steps to completion; throws unless it completed. */
async function stepRun(engine: Engine, type: string, n: number, workflowId: string): Promise<{ run_id: string }> {
  const out = await engine.runs.start(type, { n }, { workflowId });
  if (out.status !== 'completed') throw new Error(`the ${n}-step run ${workflowId} ended ${out.status}`);
  const shown = await engine.runs.show(workflowId);
  const result = shown.result as { steps?: number } | null;
  if (result?.steps !== n) throw new Error(`the ${n}-step run ${workflowId} returned ${JSON.stringify(shown.result)}`);
  return { run_id: out.run_id };
}

/** P8: `count` sequential runs of n steps each, timed together (after a small warm-up run). */
async function steps(stateDir: string, archive: string, n: number, count: number): Promise<void> {
  const { engine, type } = await engineWith(stateDir, archive);
  try {
    await stepRun(engine, type, 5, 'warm');
    const t0 = nowMs();
    for (let i = 0; i < count; i++) await stepRun(engine, type, n, `steps-${i}`);
    const ms = nowMs() - t0;
    print({ n, count, ms, per_step_ms: ms / (n * count) });
  } finally {
    await engine.close();
  }
}

type StepTemplate = { runId: string; workflowId: string; steps: number; batches: { key: string; value: string }[][] };

/**
 * P9 subject: one n-step run. Then, with the engine closed, reads back from the state
 * directory exactly what that run left there — its history events and its run record — and
 * groups them into one batch per step: the events of activity #seq (ActivityScheduled and its
 * result) plus a put of the run record; WorkflowStarted joins the first step's batch and the
 * closing event the last one. That is the least a store must write per step.
 */
async function stepTime(stateDir: string, archive: string, n: number, templateOut: string): Promise<void> {
  const { engine, type } = await engineWith(stateDir, archive);
  const workflowId = 'p9-run';
  let ms: number;
  let runId: string;
  try {
    // Warm-up: a 300-step run, so the three threads' hot paths are compiled before the clock
    // starts (per-step time keeps falling over the first ~1,000 steps of a process); the bare
    // baseline's loop is warm after its own warm-up batches.
    await stepRun(engine, type, 300, 'warm');
    const t0 = nowMs();
    ({ run_id: runId } = await stepRun(engine, type, n, workflowId));
    ms = nowMs() - t0;
  } finally {
    await engine.close();
  }
  const kv = await openLevel(stateDir, { lockTimeoutMs: 30_000 });
  const groups = new Map<number, { key: string; value: string }[]>();
  let eventsSeen = 0;
  let runRecord: { key: string; value: string } | undefined;
  try {
    const recordBytes = await kv.get(K.run(workflowId));
    if (!recordBytes) throw new Error(`no run record for ${workflowId} in ${stateDir}`);
    runRecord = { key: K.run(workflowId), value: Buffer.from(recordBytes).toString('base64') };
    for await (const [key, value] of kv.entries(K.eventRange(runId))) {
      const event = JSON.parse(Buffer.from(value).toString('utf8')) as { type: string; seq?: number };
      const group = event.type === 'WorkflowStarted' ? 1 : typeof event.seq === 'number' ? event.seq : n;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group)!.push({ key, value: Buffer.from(value).toString('base64') });
      eventsSeen++;
    }
  } finally {
    await kv.close();
  }
  if (groups.size !== n) throw new Error(`expected ${n} step groups in the history of ${runId}, found ${groups.size} (${eventsSeen} events)`);
  const batches = [...groups.keys()].sort((a, b) => a - b).map((g) => [...groups.get(g)!, runRecord!]);
  const template: StepTemplate = { runId, workflowId, steps: n, batches };
  writeFileSync(templateOut, JSON.stringify(template));
  const ops = batches.reduce((t, b) => t + b.length, 0);
  const bytes = batches.reduce((t, b) => t + b.reduce((u, op) => u + op.key.length + Buffer.from(op.value, 'base64').length, 0), 0);
  print({ n, ms, per_step_ms: ms / n, steps_per_s: (n * 1000) / ms, events: eventsSeen, ops_per_step: ops / n, bytes_per_step: bytes / n });
}

/** P9 baseline: the per-step batches of a measured run, appended with `level` alone. */
async function stepAppend(dbDir: string, templateFile: string): Promise<void> {
  const template = JSON.parse(readFileSync(templateFile, 'utf8')) as StepTemplate;
  const batches = template.batches.map((b) => b.map((op) => ({ type: 'put' as const, key: op.key, value: Buffer.from(op.value, 'base64') })));
  const db = new Level<string, Uint8Array>(dbDir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    // Warm-up: the same batches under another run id of the same length, as the subject warms up
    // with a short run first.
    const other = `${'0'.repeat(8)}${template.runId.slice(8)}`;
    for (const b of batches.slice(0, 5)) {
      await db.batch(b.map((op) => ({ ...op, key: op.key.replace(template.runId, other) })), { sync: false });
    }
    const t0 = nowMs();
    for (const b of batches) await db.batch(b, { sync: false });
    const ms = nowMs() - t0;
    const n = template.steps;
    print({ n, ms, per_step_ms: ms / n, steps_per_s: (n * 1000) / ms });
  } finally {
    await db.close();
  }
}

declare const gc: (() => void) | undefined;

function settledRss(): { rss: number; heap: number } {
  for (let i = 0; i < 4; i++) if (typeof gc === 'function') gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

/**
 * Resident memory per parked run: `count` runs of `approval` parked on ctx.signal in one engine
 * that keeps them live, as `aion serve` does (residentAll). Before = after opening, loading and
 * 200 warm-up runs (parked, then signalled to completion).
 */
async function parked(stateDir: string, archive: string, count: number): Promise<void> {
  const { engine, type } = await engineWith(stateDir, archive);
  try {
    const runs = engine.runs as unknown as { residentAll?: boolean };
    const residentAll = 'residentAll' in runs;
    if (residentAll) runs.residentAll = true;
    for (let i = 0; i < 200; i++) {
      const out = await engine.runs.start(type, { i }, { workflowId: `warm-${i}` });
      if (out.status !== 'running') throw new Error(`warm-up run ended ${out.status}`);
      const done = await engine.runs.signal(`warm-${i}`, 'approve', true);
      if (done.status !== 'completed') throw new Error(`warm-up run ended ${done.status} after its signal`);
    }
    await new Promise((r) => setTimeout(r, 50));
    const before = settledRss();
    const t0 = nowMs();
    for (let i = 0; i < count; i++) {
      const out = await engine.runs.start(type, { i }, { workflowId: `parked-${i}` });
      if (out.status !== 'running') throw new Error(`run parked-${i} ended ${out.status}, expected it parked on its signal`);
    }
    const startMs = nowMs() - t0;
    await new Promise((r) => setTimeout(r, 50));
    const after = settledRss();
    const stillRunning = (await engine.runs.list({ status: 'running' })).length;
    if (stillRunning !== count) throw new Error(`expected ${count} parked runs, found ${stillRunning}`);
    print({
      count,
      resident_all: residentAll,
      gc: typeof gc === 'function',
      rss_before_mb: before.rss / 2 ** 20,
      rss_after_mb: after.rss / 2 ** 20,
      kb_per_run: (after.rss - before.rss) / 1024 / count,
      heap_kb_per_run: (after.heap - before.heap) / 1024 / count,
      start_ms: startMs,
    });
  } finally {
    await engine.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'baseline-load':
      return baselineLoad(args[0]!);
    case 'throughput':
      return throughput(args[0]!, args[1]!, Number(args[2]), args[3]!);
    case 'append':
      return append(args[0]!, Number(args[1]), args[2]!);
    case 'flip':
      return flip(args[0]!, args[1]!, Number(args[2]), args.slice(3));
    case 'steps':
      return steps(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
    case 'step-time':
      return stepTime(args[0]!, args[1]!, Number(args[2]), args[3]!);
    case 'step-append':
      return stepAppend(args[0]!, args[1]!);
    case 'parked':
      return parked(args[0]!, args[1]!, Number(args[2]));
    default:
      throw new Error(`unknown worker command ${cmd}`);
  }
}

if (!UNDER_TEST_RUNNER) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
