// Load memory (issue 14 finding 2, P3): `aion load` reads its archive entry by entry and never
// holds it whole, so its peak memory is Node's own plus a bounded working set, not a multiple
// of the archive. Measured through bin/aion on a generated ~16 MB archive of 600 modules, as
// the process's own high-water mark (VmHWM; see test/bench/probe.ts for why not maxRSS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, tempDir } from '../helpers/cli.js';
import { storedArchive } from '../helpers/packages.js';
import { packBig, type Packed } from '../bench/setup.js';

const PROBE = pathToFileURL(path.join(ROOT, 'dist', 'test', 'bench', 'probe.js')).href;
const MB = 1024 * 1024;

let work: { dir: string; cleanup: () => void };
let big: Packed;

before(async () => {
  work = tempDir('aion-loadmem-');
  big = await packBig(work.dir, 600, 20 * MB);
});
after(() => work.cleanup());

/** Peak memory of `aion ...args` in MB, and its exit code. */
function peakOf(args: string[]): { code: number; peakMb: number; stderr: string } {
  const out = path.join(work.dir, `rss-${Date.now()}`);
  const r = spawnSync(process.execPath, ['--import', PROBE, BIN, ...args], { encoding: 'utf8', env: { ...process.env, AION_BENCH_RSS_OUT: out }, timeout: 120_000 });
  const peakMb = Number(readFileSync(out, 'utf8')) / 1024;
  rmSync(out, { force: true });
  return { code: r.status ?? -1, peakMb, stderr: r.stderr };
}

test('a load peaks far below a multiple of its archive: about Node plus a tiny load, not the archive many times over', { skip: !existsSync('/proc/self/status') && 'needs /proc for VmHWM', timeout: 300_000 }, () => {
  const archiveMb = statSync(big.path).size / MB;
  const tiny = path.join(work.dir, 'tiny.aion');
  const small = peakOf(['pack', path.join(ROOT, 'fixtures', 'hello_v1'), '--out', tiny]);
  assert.equal(small.code, 0, small.stderr);
  const baseline = peakOf(['--state-dir', path.join(work.dir, 'tiny-state'), 'load', tiny]);
  assert.equal(baseline.code, 0, baseline.stderr);
  const state = path.join(work.dir, 'state');
  const loaded = peakOf(['--state-dir', state, 'load', big.path]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const extra = loaded.peakMb - baseline.peakMb;
  process.stdout.write(`# load of a ${archiveMb.toFixed(1)} MB archive (${big.modules} modules, ${(big.inflatedBytes / MB).toFixed(1)} MB inflated): peak ${loaded.peakMb.toFixed(0)} MB, a tiny load ${baseline.peakMb.toFixed(0)} MB, so ${extra.toFixed(0)} MB for the archive (${(extra / archiveMb).toFixed(2)}×)\n`);
  // Holding the archive, its inflated modules, their texts and LevelDB's copies of the batch (as
  // before issue 14) cost about seven times the archive; reading it entry by entry costs a
  // working set of about one archive at this size (and no more for larger ones).
  assert.ok(extra < 2 * archiveMb, `a load of a ${archiveMb.toFixed(1)} MB archive took ${extra.toFixed(0)} MB beyond a tiny load (${loaded.peakMb.toFixed(0)} MB in all)`);
  assert.ok(loaded.peakMb < 2 * archiveMb + 64, `peak ${loaded.peakMb.toFixed(0)} MB`);
  assert.deepEqual(readFileSync(storedArchive(state, big.version)), readFileSync(big.path), 'stored as a file, byte for byte');
});
