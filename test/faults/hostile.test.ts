// Hostile archives: a generated corpus of ≥ 500 malformed or malicious archives is refused by
// `load` with invalid_package, each in bounded time and memory, and the state directory is
// unchanged afterwards. Most cases run in-process (Engine.loadPackage with bytes) against an
// open engine whose state directory holds loaded versions and a waiting run: there the
// database files themselves must stay byte-for-byte identical (LevelDB's informational LOG and
// LOG.old are excluded) and no write batch may be issued. A sample goes through bin/aion
// (exit 6) under a heap cap; since every LevelDB open rewrites its MANIFEST and log files, that
// sample compares the database's logical content (every key and value) instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { hostileArchives, type HostileArchive } from '../helpers/hostile.js';
import { packFixture } from '../helpers/packages.js';
import { InstrumentedKV } from '../engine/support.js';
import { FULL, checkInvariants, dumpDigest, dumpState, newStats, pool, report, runAion, tempDir } from './support.js';

const stats = newStats('hostile');
const TIME_LIMIT_MS = 10_000;
const RSS_LIMIT = 1.5 * 1024 ** 3;

/** Digest of every file under a directory except LevelDB's informational logs. */
function filesDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name !== 'LOG' && name !== 'LOG.old') h.update(`${path.relative(dir, p)}\0`).update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

let corpus: HostileArchive[] = [];

test('hostile archives: the corpus', () => {
  const { cases, benignFlips } = hostileArchives({ flips: FULL ? 1200 : 300 });
  corpus = cases;
  const byCategory = new Map<string, number>();
  for (const c of cases) byCategory.set(c.category, (byCategory.get(c.category) ?? 0) + 1);
  process.stdout.write(`[hostile] corpus of ${cases.length}: ${[...byCategory].map(([k, v]) => `${k} ${v}`).join(', ')}; ${benignFlips} bit flips hit ignored fields and decoded to the original package\n`);
  stats.extra['corpus'] = cases.length;
  stats.extra['benign bit flips'] = benignFlips;
  assert.ok(cases.length >= 500, `corpus has ${cases.length} cases`);
});

test('hostile archives: refused in-process, the state directory byte-for-byte unchanged', { timeout: 900_000 }, async () => {
  const root = tempDir('aion-hostile-');
  const stateDir = path.join(root, 'state');
  try {
    const hello = await packFixture('hello_v1', root);
    const approval = await packFixture('approval', root);
    const kv = await InstrumentedKV.open(stateDir);
    const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 5_000, kv });
    await engine.loadPackage({ path: hello.path });
    await engine.loadPackage({ path: approval.path });
    await engine.runs.start('approval', { amount: 1 }, { workflowId: 'a1' });
    const files = filesDigest(stateDir);
    const batches = kv.batches.length;
    const versions = JSON.stringify(await engine.listWorkflowVersions());
    let slowest = 0;
    let peakRss = process.memoryUsage().rss;
    for (const c of corpus) {
      stats.operations++;
      stats.faults++;
      const started = Date.now();
      try {
        await engine.loadPackage({ bytes: c.bytes, name: c.name });
        stats.failures.push(`${c.name}: accepted`);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'invalid_package') stats.failures.push(`${c.name}: refused with ${code}: ${(error as Error).message.slice(0, 200)}`);
      }
      const ms = Date.now() - started;
      slowest = Math.max(slowest, ms);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (ms > TIME_LIMIT_MS) stats.failures.push(`${c.name}: took ${ms} ms`);
      if (kv.batches.length !== batches) stats.failures.push(`${c.name}: wrote to the state directory`);
      if (filesDigest(stateDir) !== files) stats.failures.push(`${c.name}: state directory files changed`);
    }
    if (JSON.stringify(await engine.listWorkflowVersions()) !== versions) stats.failures.push('the catalog changed');
    await engine.close();
    for (const p of checkInvariants(await dumpState(stateDir))) stats.failures.push(`state afterwards: ${p}`);
    stats.extra['slowest ms'] = slowest;
    stats.extra['peak rss MiB'] = Math.round(peakRss / 2 ** 20);
    if (peakRss > RSS_LIMIT) stats.failures.push(`peak rss ${Math.round(peakRss / 2 ** 20)} MiB`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.deepEqual(stats.failures, []);
});

test('hostile archives: a sample through bin/aion exits 6 under a 256 MiB heap cap, state unchanged', { timeout: 900_000 }, async () => {
  const root = tempDir('aion-hostile-cli-');
  const stateDir = path.join(root, 'state');
  try {
    const hello = await packFixture('hello_v1', root);
    assert.equal((await runAion(['--state-dir', stateDir, 'load', hello.path])).code, 0);
    assert.equal((await runAion(['--state-dir', stateDir, 'start', 'hello', '--id', 'w1'])).code, 0);
    const before = dumpDigest(await dumpState(stateDir));
    // Every module-code case (they run code), and an even spread of the rest.
    const code = corpus.filter((c) => c.category === 'module-code');
    const rest = corpus.filter((c) => c.category !== 'module-code');
    const want = FULL ? 120 : 30;
    const sample = FULL ? [...code] : code.filter((c) => /escape-global|escape-this|process-|require-fs|child-process|loops-forever|throws-error|syntax/.test(c.name));
    const spread = want - sample.length;
    for (let k = 0; k < spread; k++) sample.push(rest[Math.floor(((k + 0.5) * rest.length) / spread)]!);
    stats.extra['cli sample'] = sample.length;
    await pool(sample, 2, async (c, i) => {
      const file = path.join(root, `case-${i}.aion`);
      writeFileSync(file, c.bytes);
      const r = await runAion(['--state-dir', stateDir, '--json', '--lock-timeout', '120', 'load', file], { nodeArgs: ['--max-old-space-size=256'], timeoutMs: 60_000 });
      stats.operations++;
      stats.faults++;
      if (r.code !== 6 || r.json?.error?.code !== 'invalid_package') stats.failures.push(`cli ${c.name}: exit ${r.code} ${r.signal ?? ''} ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
      if (r.ms > 30_000) stats.failures.push(`cli ${c.name}: took ${r.ms} ms`);
    });
    const after = await dumpState(stateDir);
    if (dumpDigest(after) !== before) stats.failures.push('the state directory content changed');
    for (const p of checkInvariants(after)) stats.failures.push(`state afterwards: ${p}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.deepEqual(stats.failures, []);
});

test('hostile archives: summary', () => {
  report(stats);
});
