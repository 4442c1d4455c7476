// Ramps in-process: the side a start takes is a function of its workflow id alone, persisted
// with the route, restored at open, cleared by route/rollback/load, and the ramping version
// cannot be unloaded.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { isAionError, type AionError } from '../../src/errors.js';
import { takesRamp } from '../../src/catalog/catalog.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { InstrumentedKV, openEngine } from './support.js';
import { Engine } from '../../src/engine/engine.js';
import { diagnose } from '../../src/engine/doctor.js';
import { K } from '../../src/store/keys.js';
import { putJSON } from '../../src/store/store.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let counter1: Packed;
let counter2: Packed;

before(async () => {
  work = tempDir('aion-ramp-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  counter1 = await packFixture('counter', work.dir, 'c1.aion');
  counter2 = await packVariant('counter', work.dir, 'c2');
});
after(() => work.cleanup());

async function rejects(p: Promise<unknown>, code: string): Promise<AionError> {
  const error = await p.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(isAionError(error), `an AionError, got ${String(error)}`);
  assert.equal((error as AionError).code, code, (error as AionError).message);
  return error as AionError;
}

/** The contract's formula, written out independently of the catalog's. */
function reference(id: string, percent: number): boolean {
  return createHash('sha256').update(id).digest().readUInt32BE(0) % 10000 < percent * 100;
}

describe('the ramp rule', () => {
  test('matches the contract formula and lands 1,000 ids at 10% within 7–13%', () => {
    let hits = 0;
    for (let i = 0; i < 1000; i++) {
      const id = `order-${i}`;
      assert.equal(takesRamp(id, 10), reference(id, 10), id);
      if (takesRamp(id, 10)) hits++;
    }
    assert.ok(hits >= 70 && hits <= 130, `${hits} of 1000 at 10%`);
    // two decimals: 0.01% is bucket 0 only
    assert.equal(takesRamp('x', 0.01), reference('x', 0.01));
  });
});

describe('ramp in the engine', () => {
  test('starts split by workflow id; persisted, restored, cleared by route; unload refused with role ramping', async () => {
    const state = path.join(work.dir, 'split');
    let { engine } = await openEngine(state);
    const ids = Array.from({ length: 40 }, (_, i) => `w-${i}`);
    const expected = new Map(ids.map((id) => [id, reference(id, 30) ? v2.version : v1.version]));
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.routeWorkflowVersion('hello', v1.version);
      const ramp = await engine.rampWorkflowVersion('hello', v2.version.slice(0, 8), 30, { message: 'canary' });
      assert.deepEqual(ramp, { workflow_type: 'hello', routed: v1.version, ramping: { version: v2.version, percent: 30 }, previous_ramp: null });
      for (const id of ids.slice(0, 20)) {
        const r = await engine.runs.start('hello', { name: id }, { workflowId: id });
        assert.equal(r.version, expected.get(id), id);
      }
      const versions = await engine.listWorkflowVersions('hello');
      assert.deepEqual(versions.map((v) => [v.state, v.ramp_percent]), [['routed', null], ['ramping', 30]]);
      const refused = await rejects(engine.unloadWorkflowVersion('hello', v2.version), 'route_active');
      assert.equal(refused.details.role, 'ramping');
      assert.match(refused.hint ?? '', /aion ramp hello --clear/);
      const routed = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'route_active');
      assert.equal(routed.details.role, 'routed');
    } finally {
      await engine.close();
    }
    // restart: the ramp is back, the same ids take the same sides
    ({ engine } = await openEngine(state));
    try {
      assert.deepEqual(engine.catalog.ramp('hello'), { version: v2.version, percent: 30 });
      for (const id of ids.slice(20)) {
        const r = await engine.runs.start('hello', { name: id }, { workflowId: id });
        assert.equal(r.version, expected.get(id), id);
      }
      const history = await engine.deployHistory('hello');
      const rampRecord = history.find((r) => r.operation === 'ramp')!;
      assert.deepEqual([rampRecord.version, rampRecord.previous, rampRecord.ramp, rampRecord.message], [v2.version, v1.version, { version: v2.version, percent: 30 }, 'canary']);
      // promote: route clears the ramp, durably
      await engine.routeWorkflowVersion('hello', v2.version);
      assert.equal(engine.catalog.ramp('hello'), undefined);
    } finally {
      await engine.close();
    }
    ({ engine } = await openEngine(state));
    try {
      assert.equal(engine.catalog.ramp('hello'), undefined, 'the cleared ramp stays cleared');
      const r = await engine.runs.start('hello', { name: 'x' }, { workflowId: ids.find((id) => expected.get(id) === v1.version)! + '-again' });
      assert.equal(r.version, v2.version);
    } finally {
      await engine.close();
    }
  });

  test('rollback and a routing load clear the ramp; --clear is idempotent', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'clears'));
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.rampWorkflowVersion('hello', v1.version, 50);
      await engine.rollbackWorkflowVersion('hello');
      assert.equal(engine.catalog.ramp('hello'), undefined, 'rollback cleared it');
      await engine.rampWorkflowVersion('hello', v2.version, 50);
      await engine.loadPackage({ path: v2.path });
      assert.equal(engine.catalog.ramp('hello'), undefined, 'a routing load cleared it');
      const cleared = await engine.rampWorkflowVersion('hello', null, null);
      assert.deepEqual(cleared, { workflow_type: 'hello', routed: v2.version, ramping: null, previous_ramp: null });
    } finally {
      await engine.close();
    }
  });

  test('bad ramps change nothing', async () => {
    const kvDir = path.join(work.dir, 'bad');
    const { engine } = await openEngine(kvDir);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      for (const percent of [0, 100, -5, 12.345, NaN, 150]) await rejects(engine.rampWorkflowVersion('hello', v1.version, percent), 'usage');
      const already = await rejects(engine.rampWorkflowVersion('hello', v2.version, 10), 'usage');
      assert.match(already.message, /already the routed version/);
      await rejects(engine.rampWorkflowVersion('hello', 'ffffffff', 10), 'not_found');
      await rejects(engine.rampWorkflowVersion('nope', v1.version, 10), 'not_found');
      await rejects(engine.rampWorkflowVersion('nope', null, null), 'not_found');
      assert.equal(engine.catalog.ramp('hello'), undefined);
      assert.equal((await engine.deployHistory('hello')).filter((r) => r.operation === 'ramp').length, 0);
    } finally {
      await engine.close();
    }
  });

  test('a failed ramp write leaves the catalog as it was', async () => {
    const dir = path.join(work.dir, 'failing');
    const kv = await InstrumentedKV.open(dir);
    const engine = await Engine.open({ stateDir: dir, create: true, lockTimeoutMs: 1000, kv });
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      kv.failBatches = 1;
      await rejects(engine.rampWorkflowVersion('hello', v1.version, 10), 'store');
      assert.equal(engine.catalog.ramp('hello'), undefined);
    } finally {
      await engine.close();
    }
  });

  test('continue-as-new successors stay on the side of their workflow id', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'can'));
    try {
      await engine.loadPackage({ path: counter1.path });
      await engine.loadPackage({ path: counter2.path });
      await engine.routeWorkflowVersion('counter', counter1.version);
      await engine.rampWorkflowVersion('counter', counter2.version, 50);
      for (const id of ['c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6']) {
        await engine.runs.start('counter', { n: 0 }, { workflowId: id });
        const shown = await engine.runs.show(id);
        assert.equal(shown.status, 'completed');
        assert.equal(shown.version, reference(id, 50) ? counter2.version : counter1.version, id);
      }
    } finally {
      await engine.close();
    }
  });
});

describe('a damaged ramp', () => {
  test('is ignored loudly at open (starts go to the routed version) and doctor repairs it', async () => {
    const dir = path.join(work.dir, 'dangling');
    let { engine, warnings } = await openEngine(dir);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.store.write([putJSON(K.ramp('hello'), { version: 'f'.repeat(64), percent: 50 })], { sync: true });
    } finally {
      await engine.close();
    }
    ({ engine, warnings } = await openEngine(dir));
    try {
      assert.equal(engine.catalog.ramp('hello'), undefined);
      assert.ok(warnings.some((w) => /ignoring the ramp of 'hello'/.test(w)), warnings.join('\n'));
      for (const id of ['a', 'b', 'c', 'd']) assert.equal((await engine.runs.start('hello', null, { workflowId: id })).version, v1.version);
      const report = await diagnose(engine.store);
      assert.deepEqual(report.problems.map((p) => [p.kind, p.repairable]), [['dangling_ramp', true]]);
      const repaired = await diagnose(engine.store, { repair: true });
      assert.equal(repaired.repaired.length, 1);
      assert.deepEqual((await diagnose(engine.store)).problems, []);
    } finally {
      await engine.close();
    }
  });
});
