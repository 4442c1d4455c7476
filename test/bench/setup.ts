// What the benchmarks run against, generated on the spot: small package variants, a large
// package (2,000 modules, ~50 MB archive) and state directories holding many recorded runs,
// seeded straight through the store API instead of running 100,000 workflows.
import { cpSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { packProject } from '../../src/package/index.js';
import { Engine } from '../../src/engine/engine.js';
import { K } from '../../src/store/keys.js';
import { putJSON } from '../../src/store/store.js';
import { pinOps } from '../../src/store/pins.js';
import type { BatchOp } from '../../src/store/kv.js';
import type { RunRecord } from '../../src/engine/runs.js';
import type { WorkflowEvent } from '../../src/runtime/history.js';
import { FIXTURES } from './lib.js';

export interface Packed {
  path: string;
  version: string;
  type: string;
  bytes: number;
  modules: number;
  inflatedBytes: number;
}

async function pack(projectDir: string, out: string): Promise<Packed> {
  const { path: file, pkg } = await packProject(projectDir, { out });
  let inflated = 0;
  for (const m of pkg.modules.values()) inflated += m.length;
  return { path: file, version: pkg.version, type: pkg.manifest.workflow_type, bytes: pkg.archiveBytes, modules: pkg.modules.size, inflatedBytes: inflated };
}

/** `fixtures/<name>` with a comment appended to its entry module: a new version of its type. */
export async function packVariant(fixture: string, dir: string, tag: string): Promise<Packed> {
  const projectDir = path.join(dir, 'projects', tag);
  cpSync(path.join(FIXTURES, fixture), projectDir, { recursive: true });
  const config = JSON.parse(readFileSync(path.join(projectDir, 'workflow.json'), 'utf8')) as { entry_module: string };
  appendFileSync(path.join(projectDir, 'modules', `${config.entry_module}.js`), `\n// bench variant ${tag}\n`);
  return pack(projectDir, path.join(dir, `${tag}.aion`));
}

export async function packFixture(fixture: string, dir: string): Promise<Packed> {
  return pack(path.join(FIXTURES, fixture), path.join(dir, `${fixture}.aion`));
}

/** xorshift32: reproducible pseudo-random text, the same on every machine. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const ALPHABET_CODES = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');

/**
 * A workflow project `big` with `modules` modules whose text totals about `inflatedBytes`:
 * the entry module (requires nothing) plus `big@mNNNN` modules, each a large string literal
 * of pseudo-random base64 text (deflate gets it to ~3/4, so the archive is big too) and a
 * little code.
 */
export function writeBigProject(dir: string, modules: number, inflatedBytes: number): string {
  const projectDir = path.join(dir, 'projects', 'big');
  mkdirSync(path.join(projectDir, 'modules', 'big'), { recursive: true });
  writeFileSync(
    path.join(projectDir, 'workflow.json'),
    JSON.stringify({ entry_module: 'big', entry_function: 'run', timeout_seconds: 60, activities: [] }, null, 2),
  );
  writeFileSync(path.join(projectDir, 'modules', 'big.js'), 'exports.run = async (ctx, input) => ({ ok: true, input });\n');
  const next = prng(0x5eed);
  const per = Math.floor(inflatedBytes / (modules - 1));
  for (let i = 1; i < modules; i++) {
    const name = `m${String(i).padStart(4, '0')}`;
    const chars = Buffer.allocUnsafe(per);
    for (let j = 0; j < per; j++) chars[j] = ALPHABET_CODES[next() & 63]!;
    // Short lines of data, so that the text also looks like generated code.
    const lines: string[] = [];
    const text = chars.toString('latin1');
    for (let at = 0; at < text.length; at += 96) lines.push(`  '${text.slice(at, at + 96)}'`);
    const source = `// generated module ${name}\nexports.id = ${i};\nexports.data = [\n${lines.join(',\n')}\n].join('');\nexports.size = () => exports.data.length;\n`;
    writeFileSync(path.join(projectDir, 'modules', 'big', `${name}.js`), source);
  }
  return projectDir;
}

export async function packBig(dir: string, modules: number, inflatedBytes: number): Promise<Packed> {
  const projectDir = writeBigProject(dir, modules, inflatedBytes);
  return pack(projectDir, path.join(dir, 'big.aion'));
}

/** Loads archives (in order: the last one is routed) into a fresh state directory. */
export async function loadInto(stateDir: string, archives: readonly string[]): Promise<void> {
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 30_000 });
  try {
    for (const file of archives) await engine.loadPackage({ path: file });
  } finally {
    await engine.close();
  }
}

export interface SeedPlan {
  /** Runs recorded in total (completed + active). */
  runs: number;
  /** Of which active (record `running`, active marker, run pin). */
  active: number;
  /** The version one active run pins (the unload target); the other active runs pin `routed`. */
  pinnedOld: { type: string; version: string };
  routed: { type: string; version: string };
}

/**
 * Writes `plan.runs` run records with short histories straight through the store, in batches,
 * as the run engine would have left them: completed runs (3 events, no index entries) and
 * active runs (2 events, active marker and run pin). Exactly one active run pins `pinnedOld`.
 */
export async function seedRuns(stateDir: string, plan: SeedPlan): Promise<void> {
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 30_000 });
  try {
    const t0 = Date.parse('2025-01-01T00:00:00Z');
    let ops: BatchOp[] = [];
    for (let i = 0; i < plan.runs; i++) {
      const active = i < plan.active;
      const target = active && i === 0 ? plan.pinnedOld : plan.routed;
      const workflowId = `seed-${String(i).padStart(7, '0')}`;
      const runId = randomUUID();
      const at = t0 + i * 1000;
      const events: WorkflowEvent[] = [
        { type: 'WorkflowStarted', at, workflow_id: workflowId, run_id: runId, workflow_type: target.type, package_version: target.version, input: { n: i } },
        { type: 'SignalReceived', at: at + 10, name: 'poke', input: { n: i } },
      ];
      if (!active) events.push({ type: 'WorkflowCompleted', at: at + 20, result: { greeting: `hello ${i}` } });
      const rec: RunRecord = {
        workflow_id: workflowId,
        run_id: runId,
        workflow_type: target.type,
        version: target.version,
        status: active ? 'running' : 'completed',
        started_at: new Date(at).toISOString(),
        updated_at: new Date(at + 20).toISOString(),
        result: active ? null : { greeting: `hello ${i}` },
        error: null,
        parent: null,
        events: events.length,
      };
      events.forEach((e, n) => ops.push(putJSON(K.event(runId, n), e)));
      ops.push(putJSON(K.run(workflowId), rec));
      if (active) {
        ops.push(putJSON(K.active(workflowId), { run_id: runId }));
        ops.push(pinOps.addRun(target.type, target.version, workflowId, runId));
      }
      if (ops.length >= 4000) {
        await engine.store.write(ops, { sync: false });
        ops = [];
      }
    }
    if (ops.length > 0) await engine.store.write(ops, { sync: true });
  } finally {
    await engine.close();
  }
}
