// Staging and rollout fields in-process: load --no-route, the author label, rollback_target,
// AION_ACTOR as the history's user, status and prune.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isAionError, type AionError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';
import { editConfig, packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { openEngine } from './support.js';
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

export { v3, approval };
