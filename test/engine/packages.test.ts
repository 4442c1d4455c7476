// In process: the engine's side of packages with several types and of startup packages — a
// failed entry verification of any type loads none; a startup version is held in memory only
// and becomes `loaded` when `load` persists it; a child of a non-internal type of the same
// package takes that type's routed version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, packVariant, editConfig } from '../helpers/packages.js';
import { openEngine } from './support.js';

test('a type whose entry does not verify refuses the whole package: no type is registered or persisted', async () => {
  const { dir, cleanup } = tempDir('aion-engine-pkg-');
  try {
    const bad = await packVariant('family_v1', dir, 'bad', (d) =>
      editConfig(d, { additional_workflows: [{ workflow_type: 'family_child', entry_module: 'family@child', entry_function: 'missing', internal: true }] }),
    );
    const { engine } = await openEngine(path.join(dir, 'state'));
    try {
      await assert.rejects(engine.loadPackage({ path: bad.path }), (e: unknown) => isAionError(e, 'invalid_package') && /missing/.test((e as Error).message));
      assert.deepEqual(await engine.listWorkflowVersions(), []);
      assert.deepEqual(await engine.deployHistory(), []);
    } finally {
      await engine.close();
    }
  } finally {
    cleanup();
  }
});

test('a startup package is held in memory and routed; load persists it as loaded; nothing of it survives a restart otherwise', async () => {
  const { dir, cleanup } = tempDir('aion-engine-pkg-');
  try {
    const stateDir = path.join(dir, 'state');
    const v1 = await packFixture('family_v1', dir);
    const h1 = await packFixture('hello_v1', dir);
    let { engine } = await openEngine(stateDir);
    try {
      const outcome = await engine.loadStartupPackage(v1.path);
      assert.deepEqual(outcome.workflow_types, ['family', 'family_child', 'family_echo']);
      await engine.loadStartupPackage(h1.path);
      assert.deepEqual((await engine.listWorkflowVersions()).map((v) => [v.workflow_type, v.source, v.state]), [
        ['family', 'startup', 'routed'],
        ['family_child', 'startup', 'drained'],
        ['family_echo', 'startup', 'routed'],
        ['hello', 'startup', 'routed'],
      ]);
      assert.deepEqual(await engine.deployHistory(), [], 'no deploy record');
      const persisted = await engine.loadPackage({ path: h1.path });
      assert.deepEqual([persisted.freshly_loaded, persisted.route_changed], [false, false]);
      assert.equal((await engine.listWorkflowVersions('hello'))[0]!.source, 'loaded');
    } finally {
      await engine.close();
    }
    ({ engine } = await openEngine(stateDir));
    try {
      assert.deepEqual((await engine.listWorkflowVersions()).map((v) => [v.workflow_type, v.source, v.state]), [['hello', 'loaded', 'routed']]);
    } finally {
      await engine.close();
    }
  } finally {
    cleanup();
  }
});
