// The engine's load progress callback: the steps in order, byte progress while reading, the
// skipped steps of a re-load, and a throwing callback that cannot fail the load.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Engine, LOAD_STEPS, type LoadProgressDetail, type LoadStep } from '../../src/engine/engine.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;

before(async () => {
  work = tempDir('aion-ux-progress-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
});
after(() => work.cleanup());

describe('load progress', () => {
  test('every step, in order; read reports bytes; a re-load skips register and verify', async () => {
    const engine = await Engine.open({ stateDir: path.join(work.dir, 'state'), create: true, lockTimeoutMs: 1000 });
    try {
      const seen: [LoadStep, LoadProgressDetail | undefined][] = [];
      await engine.loadPackage({ path: v1.path }, { onProgress: (step, detail) => seen.push([step, detail]) });
      const steps = seen.map(([s]) => s).filter((s, i, all) => all[i - 1] !== s);
      assert.deepEqual(steps, [...LOAD_STEPS]);
      const bytes = seen.find(([s, d]) => s === 'read' && d?.total !== undefined)?.[1];
      assert.ok(bytes && bytes.bytes === bytes.total && bytes.total! > 0, 'read reports bytes of total');

      const again: [LoadStep, LoadProgressDetail | undefined][] = [];
      const outcome = await engine.loadPackage({ path: v1.path }, { onProgress: (step, detail) => again.push([step, detail]) });
      assert.equal(outcome.freshly_loaded, false);
      assert.deepEqual([...new Set(again.map(([s]) => s))], ['read', 'validate', 'hash', 'register', 'persist', 'route']);
      assert.equal(again.find(([s]) => s === 'register')?.[1]?.skipped, 'already loaded');

      const dry: LoadStep[] = [];
      await engine.loadPackage({ path: v1.path }, { dryRun: true, onProgress: (step) => dry.push(step) });
      assert.ok(!dry.includes('persist') && !dry.includes('route'), 'a dry run persists and routes nothing');

      const thrown = await engine.loadPackage({ path: v1.path }, { onProgress: () => { throw new Error('view crashed'); } });
      assert.equal(thrown.version, v1.version, 'a throwing callback does not fail the load');
    } finally {
      await engine.close();
    }
  });
});
