// Staging and rollout fields in-process: load --no-route, the author label, rollback_target,
// AION_ACTOR as the history's user, status and prune.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { isAionError, type AionError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';
import { editConfig, packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { InstrumentedKV, openEngine } from './support.js';
import { Engine } from '../../src/engine/engine.js';
import { EmbeddedClient } from '../../src/client/client.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let v3: Packed;
let labelled: Packed;
let approval: Packed;

before(async () => {
  work = tempDir('aion-rollout-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  v3 = await packVariant('hello_v2', work.dir, 'v3');
  labelled = await packVariant('hello_v2', work.dir, 'labelled', (dir) => {
    editConfig(dir, { label: 'v2.1 — faster greeting' });
    appendFileSync(path.join(dir, 'modules', 'hello.js'), '\n// labelled\n');
  });
  approval = await packFixture('approval', work.dir);
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

describe('load --no-route', () => {
  test('registers and persists without routing; start names the loaded versions; route later', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'noroute'));
    try {
      const staged = await engine.loadPackage({ path: v1.path }, { route: false });
      assert.deepEqual([staged.routed, staged.route_changed, staged.freshly_loaded, staged.previous], [false, false, true, null]);
      const refused = await rejects(engine.runs.start('hello', null, { workflowId: 'x' }), 'not_found');
      assert.deepEqual(refused.details.loaded, [v1.version]);
      assert.match(refused.message, /no routed version/);
      await engine.routeWorkflowVersion('hello', v1.version);
      const again = await engine.loadPackage({ path: v2.path }, { route: false });
      assert.deepEqual([again.routed, again.route_changed, again.previous], [false, false, v1.version]);
      assert.equal(engine.catalog.snapshot().routes.get('hello'), v1.version, 'the route did not move');
      // the staged load is not a route change: rollback from v1 has no target
      await rejects(engine.rollbackWorkflowVersion('hello'), 'not_found');
      const history = await engine.deployHistory('hello');
      assert.deepEqual(history.map((r) => [r.operation, r.routed]), [['load', false], ['route', undefined], ['load', false]]);
    } finally {
      await engine.close();
    }
    const { engine: reopened } = await openEngine(path.join(work.dir, 'noroute'));
    try {
      assert.equal(reopened.catalog.snapshot().routes.get('hello'), v1.version, 'a restart keeps the route where it was');
    } finally {
      await reopened.close();
    }
  });
});

describe('label, rollback_target and the actor', () => {
  test('versions shows label and rollback_target; the actor is the history user', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'fields'));
    const client = new EmbeddedClient(engine);
    const saved = process.env.AION_ACTOR;
    try {
      process.env.AION_ACTOR = 'ci-bot';
      await client.load({ archive: v1.path });
      const loaded = await client.load({ archive: labelled.path });
      assert.equal(loaded.label, 'v2.1 — faster greeting');
      delete process.env.AION_ACTOR;
      await client.route({ workflow_type: 'hello', version: v1.version, actor: 'ada' });
      const versions = await client.versions({ workflow_type: 'hello' });
      assert.deepEqual(versions.map((v) => [v.version, v.label, v.rollback_target, v.state]), [
        [v1.version, null, false, 'routed'],
        [labelled.version, 'v2.1 — faster greeting', true, 'drained'],
      ]);
      const history = await client.history({ workflow_type: 'hello' });
      assert.deepEqual(history.map((r) => r.user), ['ci-bot', 'ci-bot', 'ada']);
    } finally {
      if (saved === undefined) delete process.env.AION_ACTOR;
      else process.env.AION_ACTOR = saved;
      await engine.close();
    }
  });

  test('bad params are refused before the engine is reached', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'params'));
    const client = new EmbeddedClient(engine);
    try {
      await rejects(client.unload({ workflow_type: 'hello', version: 'abcd', dryrun: true } as never), 'usage');
      await rejects(client.route({ workflow_type: 7, version: 'abcd' } as never), 'usage');
      await rejects(client.ramp({ workflow_type: 'hello', version: 'abcd', percent: '10' } as never), 'usage');
      await rejects(client.ramp({ workflow_type: 'hello' }), 'usage');
      assert.deepEqual(await client.history(), []);
    } finally {
      await engine.close();
    }
  });
});

describe('status and prune', () => {
  test('prune never unloads the routed, ramping or rollback-target version; keeps n; keeps pinned ones', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'prune'));
    try {
      // hello: v1, v2, labelled, v3 loaded in that order; approval pinned by a waiting run
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.loadPackage({ path: labelled.path });
      await engine.loadPackage({ path: v3.path }); // routed; rollback target: labelled
      await engine.rampWorkflowVersion('hello', v1.version, 5); // ramping: v1
      await engine.loadPackage({ path: approval.path });
      await engine.runs.start('approval', null, { workflowId: 'order-1' });
      const approval2 = await engine.loadPackage({ path: (await packVariant('approval', work.dir, 'approval-2')).path });

      const status = await engine.rolloutStatus();
      const hello = status.find((t) => t.workflow_type === 'hello')!;
      assert.deepEqual(
        [hello.routed, hello.ramping, hello.rollback_target, hello.drained, hello.draining],
        [v3.version, { version: v1.version, percent: 5, label: null }, labelled.version, [v2.version, labelled.version], []],
      );
      const appr = status.find((t) => t.workflow_type === 'approval')!;
      assert.deepEqual(appr.draining, [{ version: approval.version, pins: { live: 0, recoverable: 1, recorded_children: 0 } }]);
      assert.equal(appr.rollback_target, approval.version);
      assert.deepEqual(appr.runs, { [approval.version]: { running: 1 } });

      const dry = await engine.pruneVersions(undefined, 0, { dryRun: true });
      assert.equal(dry.dry_run, true);
      assert.deepEqual(dry.unloaded, [{ workflow_type: 'hello', version: v2.version }]);
      assert.equal(engine.catalog.versionsOf('hello').length, 4, 'a dry run unloads nothing');

      const kept1 = await engine.pruneVersions('hello');
      assert.deepEqual(kept1.unloaded, [], '--keep 1 (the default) keeps the newest of the rest');
      assert.deepEqual(kept1.kept.map((k) => [k.version, k.reason]), [[v1.version, 'ramping'], [labelled.version, 'rollback_target'], [v3.version, 'routed'], [v2.version, 'keep']]);

      const pruned = await engine.pruneVersions('hello', 0, { actor: 'ops' });
      assert.deepEqual(pruned.unloaded, [{ workflow_type: 'hello', version: v2.version }]);
      assert.deepEqual(engine.catalog.versionsOf('hello').map((e) => e.version), [v1.version, labelled.version, v3.version]);
      const last = (await engine.deployHistory('hello')).at(-1)!;
      assert.deepEqual([last.operation, last.version, last.message, last.user], ['unload', v2.version, 'prune', 'ops']);
      assert.equal((await engine.rollbackWorkflowVersion('hello')).version, labelled.version, 'rollback still works after prune');

      // approval: v1 is pinned and the rollback target; after routing back and forth it stays pinned
      await engine.routeWorkflowVersion('approval', approval2.version);
      const ap = await engine.pruneVersions('approval', 0);
      assert.deepEqual(ap.unloaded, []);
      await rejects(engine.pruneVersions('nope'), 'not_found');
      await rejects(engine.pruneVersions(undefined, -1), 'usage');
    } finally {
      await engine.close();
    }
  });

  test('a pinned version is kept as pinned, and a failed prune write unloads nothing', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'prune-pinned'));
    try {
      const a1 = await engine.loadPackage({ path: approval.path });
      await engine.runs.start('approval', null, { workflowId: 'p-1' });
      const a2 = await packVariant('approval', work.dir, 'ap-b');
      const a3 = await packVariant('approval', work.dir, 'ap-c');
      await engine.loadPackage({ path: a2.path });
      await engine.loadPackage({ path: a3.path }); // routed a3, target a2, a1 pinned by p-1
      const r = await engine.pruneVersions('approval', 0);
      assert.deepEqual(r.kept.map((k) => [k.version, k.reason]), [[a2.version, 'rollback_target'], [a3.version, 'routed'], [a1.version, 'pinned']]);
      assert.deepEqual(r.unloaded, []);
    } finally {
      await engine.close();
    }
  });

  test('a failed prune write unloads nothing and restores the catalog', async () => {
    const dir = path.join(work.dir, 'prune-fail');
    const kv = await InstrumentedKV.open(dir);
    const engine = await Engine.open({ stateDir: dir, create: true, lockTimeoutMs: 1000, kv });
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.loadPackage({ path: v3.path });
      await engine.loadPackage({ path: labelled.path }); // routed labelled, target v3; v1, v2 prunable with keep 0
      kv.failBatches = 1;
      await rejects(engine.pruneVersions('hello', 0), 'store');
      assert.equal(engine.catalog.versionsOf('hello').length, 4);
      const again = await engine.pruneVersions('hello', 0);
      assert.deepEqual(again.unloaded.map((u) => u.version), [v1.version, v2.version]);
    } finally {
      await engine.close();
    }
  });
});
