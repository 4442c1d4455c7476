// The deploy seam in-process: load / route / list / unload and the invariants they keep.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAionError, type AionError } from '../../src/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { K } from '../../src/store/keys.js';
import { pinOps } from '../../src/store/pins.js';
import { tempDir } from '../helpers/cli.js';
import { editConfig, packFixture, packVariant, storedArchive, type Packed } from '../helpers/packages.js';
import { InstrumentedKV, openEngine, TEST_BACKEND } from './support.js';

async function rejects(promise: Promise<unknown>, code: string): Promise<AionError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isAionError(error), `expected an AionError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let v1Timeout: Packed; // same modules as v1, different manifest
let approval: Packed;

before(async () => {
  work = tempDir();
  v1 = await packFixture('hello_v1', work.dir, 'hello-v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'hello-v2.aion');
  v1Timeout = await packVariant('hello_v1', work.dir, 'hello-v1-timeout', (dir) => editConfig(dir, { timeout_seconds: 999 }));
  approval = await packFixture('approval', work.dir);
});
after(() => work.cleanup());

describe('load', () => {
  test('loads, routes, and flips the route on the next version', async () => {
    const state = path.join(work.dir, 'state-load');
    const { engine } = await openEngine(state);
    try {
      const first = await engine.loadPackage({ path: v1.path });
      assert.deepEqual(
        { fresh: first.freshly_loaded, changed: first.route_changed, previous: first.previous, version: first.version },
        { fresh: true, changed: true, previous: null, version: v1.version },
      );
      assert.equal(first.deployed_entry_module, `hello$${v1.version}`);
      assert.equal(first.entry_function, 'run');
      assert.equal(engine.catalog.routed('hello')?.version, v1.version);

      const second = await engine.loadPackage({ path: v2.path });
      assert.equal(second.previous, v1.version);
      assert.equal(second.route_changed, true);
      assert.equal(engine.catalog.routed('hello')?.version, v2.version);
      const versions = await engine.listWorkflowVersions('hello');
      assert.deepEqual(versions.map((v) => [v.version, v.route_active, v.state]), [
        [v1.version, false, 'drained'],
        [v2.version, true, 'routed'],
      ]);
    } finally {
      await engine.close();
    }
  });

  test('re-loading a loaded version registers nothing but re-points the route', async () => {
    const state = path.join(work.dir, 'state-reload');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      const again = await engine.loadPackage({ path: v1.path });
      assert.equal(again.freshly_loaded, false);
      assert.equal(again.route_changed, true, 're-deploying a rolled-back version must take effect');
      assert.equal(engine.catalog.routed('hello')?.version, v1.version);
      const idempotent = await engine.loadPackage({ path: v1.path });
      assert.equal(idempotent.freshly_loaded, false);
      assert.equal(idempotent.route_changed, false);
      assert.equal((await engine.listWorkflowVersions()).length, 2);
    } finally {
      await engine.close();
    }
  });

  test('same version with a different manifest is refused and changes nothing', async () => {
    assert.equal(v1Timeout.version, v1.version, 'a manifest field must not change the version');
    const state = path.join(work.dir, 'state-mismatch');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      const before = engine.catalog.snapshot();
      const error = await rejects(engine.loadPackage({ path: v1Timeout.path }), 'manifest_mismatch');
      assert.match(error.message, /different manifest/);
      assert.equal(engine.catalog.snapshot(), before, 'the catalog snapshot is the same object');
      assert.equal(engine.catalog.get('hello', v1.version)?.manifest.timeout_seconds, 60);
    } finally {
      await engine.close();
    }
  });

  test('--dry-run validates and reports without changing anything', async () => {
    const state = path.join(work.dir, 'state-dry');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      const dry = await engine.loadPackage({ path: v2.path }, { dryRun: true });
      assert.deepEqual([dry.dry_run, dry.freshly_loaded, dry.route_changed], [true, true, true]);
      assert.equal(engine.catalog.get('hello', v2.version), undefined);
      assert.equal(engine.catalog.routed('hello')?.version, v1.version);
      assert.equal(existsSync(storedArchive(state, v2.version)), false, 'no archive file');
    } finally {
      await engine.close();
    }
  });

  test('a failed persistence is reported as store and leaves nothing half-done; a retry succeeds', async () => {
    const state = path.join(work.dir, 'state-faulty');
    const kv = await InstrumentedKV.open(state);
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 1000, kv });
    try {
      await engine.loadPackage({ path: v1.path });
      kv.failBatches = 1;
      const before = engine.catalog.snapshot();
      await rejects(engine.loadPackage({ path: v2.path }), 'store');
      assert.equal(engine.catalog.snapshot(), before);
      if (TEST_BACKEND === 'level') {
        // Archive files exist beside a state directory only (PostgreSQL keeps them as rows).
        assert.equal(existsSync(storedArchive(state, v2.version)), false, 'the archive file written before the failed batch is gone');
        assert.deepEqual(readdirSync(path.join(state, 'archives')), [`${v1.version}.aion`]);
      }
      assert.equal(new TextDecoder().decode(await engine.store.get(K.route('hello'))), v1.version);
      const retried = await engine.loadPackage({ path: v2.path });
      assert.equal(retried.freshly_loaded, true, 'nothing of the failed attempt stayed registered in the catalog');
      assert.equal(engine.catalog.routed('hello')?.version, v2.version);

      kv.failBatches = 1;
      await rejects(engine.routeWorkflowVersion('hello', v1.version), 'store');
      assert.equal(engine.catalog.routed('hello')?.version, v2.version);

      kv.failBatches = 1;
      await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'store');
      assert.ok(engine.catalog.get('hello', v1.version), 'a failed unload restores the version');
      if (TEST_BACKEND === 'level') assert.ok(existsSync(storedArchive(state, v1.version)), 'a failed unload keeps the archive file');
    } finally {
      await engine.close();
    }
  });

  test('invalid archives are refused with invalid_package before anything changes', async () => {
    const state = path.join(work.dir, 'state-invalid');
    const { engine } = await openEngine(state);
    try {
      await rejects(engine.loadPackage({ bytes: new TextEncoder().encode('not a zip at all') }), 'invalid_package');
      await rejects(engine.loadPackage({ path: path.join(work.dir, 'missing.aion') }), 'usage');
      assert.equal((await engine.listWorkflowVersions()).length, 0);
    } finally {
      await engine.close();
    }
  });

  test('a module that throws at load fails entry verification and registers nothing', async () => {
    const broken = await packVariant('hello_v2', work.dir, 'hello-throws', (dir) => {
      const file = path.join(dir, 'modules', 'hello.js');
      writeFileSync(file, "throw new Error('boom at load');\n");
    });
    const state = path.join(work.dir, 'state-throws');
    const { engine } = await openEngine(state);
    try {
      const error = await rejects(engine.loadPackage({ path: broken.path }), 'invalid_package');
      assert.match(error.message, /boom at load/);
      assert.equal((await engine.listWorkflowVersions()).length, 0);
    } finally {
      await engine.close();
    }
  });
});

describe('route', () => {
  test('routes back and forth, idempotently, and survives a restart', async () => {
    const state = path.join(work.dir, 'state-route');
    let { engine } = await openEngine(state);
    await engine.loadPackage({ path: v1.path });
    await engine.loadPackage({ path: v2.path });
    const back = await engine.routeWorkflowVersion('hello', v1.version.slice(0, 6));
    assert.deepEqual(back, { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version });
    const again = await engine.routeWorkflowVersion('hello', v1.version);
    assert.equal(again.previous, v1.version);
    await engine.close();

    ({ engine } = await openEngine(state));
    try {
      assert.equal(engine.catalog.routed('hello')?.version, v1.version, 'a rollback survives a restart');
      assert.equal(engine.catalog.list().length, 2);
    } finally {
      await engine.close();
    }
  });

  test('an unknown version is not_found naming the loaded set; bad prefixes are usage', async () => {
    const state = path.join(work.dir, 'state-route-unknown');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      const missing = await rejects(engine.routeWorkflowVersion('hello', 'ffff0000'), 'not_found');
      assert.deepEqual(missing.details.loaded, [v1.version]);
      await rejects(engine.routeWorkflowVersion('nope', v1.version), 'not_found');
      await rejects(engine.routeWorkflowVersion('hello', 'abc'), 'usage');
      await rejects(engine.routeWorkflowVersion('hello', 'xyz123'), 'usage');
    } finally {
      await engine.close();
    }
  });
});

describe('unload', () => {
  test('refuses the routed version, unloads an unpinned one for good', async () => {
    const state = path.join(work.dir, 'state-unload');
    let { engine } = await openEngine(state);
    await engine.loadPackage({ path: v1.path });
    await engine.loadPackage({ path: v2.path });
    const routed = await rejects(engine.unloadWorkflowVersion('hello', v2.version), 'route_active');
    // the newest version is routed: the sensible way out is back to where it came from
    assert.match(routed.hint ?? '', /aion rollback hello/);
    await engine.routeWorkflowVersion('hello', v1.version);
    const older = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'route_active');
    // an older version is routed: suggest the newer one, never an older one
    assert.match(older.hint ?? '', new RegExp(`route the newer version first: aion route hello ${v2.version.slice(0, 12)}`));
    await engine.routeWorkflowVersion('hello', v2.version);
    const dry = await engine.unloadWorkflowVersion('hello', v1.version, { dryRun: true });
    assert.deepEqual([dry.unloaded, dry.dry_run], [false, true]);
    assert.ok(engine.catalog.get('hello', v1.version), 'a dry run keeps the version');
    const done = await engine.unloadWorkflowVersion('hello', v1.version.slice(0, 8));
    assert.deepEqual(done, { workflow_type: 'hello', version: v1.version, unloaded: true });
    assert.equal(existsSync(storedArchive(state, v1.version)), false, 'the archive file goes with the unload');
    assert.equal(await engine.store.get(K.packageMeta('hello', v1.version)), undefined);
    await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'not_found');
    await engine.close();

    ({ engine } = await openEngine(state));
    try {
      assert.equal(engine.catalog.get('hello', v1.version), undefined, 'an unloaded version does not come back');
      assert.equal(engine.catalog.routed('hello')?.version, v2.version);
    } finally {
      await engine.close();
    }
  });

  test('refuses while pinned, naming every holder, and restores the version', async () => {
    const state = path.join(work.dir, 'state-pinned');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.store.write(
        [
          pinOps.addRun('hello', v1.version, 'wf-a', 'run-a'),
          pinOps.addRun('hello', v1.version, 'wf-b', 'run-b'),
          pinOps.addChild('hello', v1.version, 'child-c', 'parent-p'),
        ],
        { sync: false },
      );
      engine.live.mark({ workflowId: 'wf-b', runId: 'run-b', workflowType: 'hello', version: v1.version });
      const error = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'version_pinned');
      assert.equal(error.details.holders_total, 3);
      // On a shared store a live run names the worker leasing it (this engine).
      const worker = engine.fleet ? { worker: engine.fleet.id } : {};
      assert.deepEqual(error.details.pinned_by, { kind: 'live_run', workflow_id: 'wf-b', run_id: 'run-b', ...worker });
      assert.deepEqual(error.details.holders, [
        { kind: 'live_run', workflow_id: 'wf-b', run_id: 'run-b', ...worker },
        { kind: 'recoverable_run', workflow_id: 'wf-a', run_id: 'run-a' },
        { kind: 'recorded_child', child_workflow_id: 'child-c', recorded_by: 'parent-p' },
      ]);
      assert.match(error.message, /wf-a/);
      assert.match(error.message, /child-c/);
      assert.match(error.hint ?? '', /aion terminate/);
      assert.ok(engine.catalog.get('hello', v1.version), 'the version is restored after a refusal');
      const [info] = (await engine.listWorkflowVersions('hello')).filter((v) => v.version === v1.version);
      assert.deepEqual(info!.pins, { live: 1, recoverable: 1, recorded_children: 1 });
      assert.equal(info!.state, 'draining');
    } finally {
      engine.live.clear();
      await engine.close();
    }
  });

  test('an in-flight start pins the version it resolved, even after the route moves', async () => {
    const state = path.join(work.dir, 'state-inflight');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      const pin = engine.catalog.pinStart('hello', 'in-flight');
      await engine.loadPackage({ path: v2.path });
      const error = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'version_pinned');
      assert.deepEqual(error.details.pinned_by, { kind: 'in_flight_start' });
      pin.release();
      pin.release(); // idempotent
      assert.equal((await engine.unloadWorkflowVersion('hello', v1.version)).unloaded, true);
    } finally {
      await engine.close();
    }
  });

  test('lists at most 100 holders but counts them all', async () => {
    const state = path.join(work.dir, 'state-many');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      const ops = Array.from({ length: 250 }, (_, i) => pinOps.addRun('hello', v1.version, `wf-${String(i).padStart(3, '0')}`, `r${i}`));
      await engine.store.write(ops, { sync: false });
      const error = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'version_pinned');
      assert.equal((error.details.holders as unknown[]).length, 100);
      assert.equal(error.details.holders_total, 250);
    } finally {
      await engine.close();
    }
  });
});

describe('deploy history', () => {
  test('records every operation once, oldest first; limit keeps the newest of the type', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'state-history'));
    try {
      await engine.loadPackage({ path: v1.path }, { message: 'first' });
      await engine.loadPackage({ path: approval.path });
      await engine.loadPackage({ path: v2.path });
      await engine.routeWorkflowVersion('hello', v1.version);
      await engine.unloadWorkflowVersion('hello', v2.version);
      const all = await engine.deployHistory();
      assert.deepEqual(all.map((r) => [r.operation, r.workflow_type]), [['load', 'hello'], ['load', 'approval'], ['load', 'hello'], ['route', 'hello'], ['unload', 'hello']]);
      assert.equal(all[0]!.message, 'first');
      assert.equal(all[2]!.previous, v1.version);
      const newest = await engine.deployHistory('hello', 2);
      assert.deepEqual(newest.map((r) => r.operation), ['route', 'unload']);
      assert.deepEqual(await engine.deployHistory('hello', 0), []);
      assert.equal((await engine.deployHistory(undefined, 10)).length, 5);
    } finally {
      await engine.close();
    }
  });
});

describe('pin index at scale', () => {
  test('versions and the unload check read only the entries of the versions involved', async () => {
    const state = path.join(work.dir, 'state-scale');
    const kv = await InstrumentedKV.open(state);
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 1000, kv });
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path });
      await engine.loadPackage({ path: approval.path });
      // 100,000 pin entries on hello v2 (the routed one); 3 on hello v1.
      for (let chunk = 0; chunk < 10; chunk++) {
        const ops = Array.from({ length: 10_000 }, (_, i) => pinOps.addRun('hello', v2.version, `wf-${chunk}-${i}`, `run-${chunk}-${i}`));
        await engine.store.write(ops, { sync: false });
      }
      await engine.store.write([0, 1, 2].map((i) => pinOps.addRun('hello', v1.version, `old-${i}`, `r-${i}`)), { sync: false });

      kv.scanned = 0;
      const error = await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'version_pinned');
      assert.equal(error.details.holders_total, 3);
      assert.ok(kv.scanned <= 3, `the unload check read ${kv.scanned} entries; it must read only v1's 3 pins`);

      kv.scanned = 0;
      const versions = await engine.listWorkflowVersions('approval');
      assert.equal(versions.length, 1);
      // The deploy log (3 load records) is read for rollback_target: it grows with deploys, not runs.
      assert.equal(kv.scanned, 3, 'listing approval reads no pin of hello, only the deploy log');

      kv.scanned = 0;
      const hello = await engine.listWorkflowVersions('hello');
      assert.equal(hello.find((v) => v.version === v1.version)!.pins.recoverable, 3);
      assert.equal(hello.find((v) => v.version === v2.version)!.pins.recoverable, 100_000);
      assert.equal(kv.scanned, 100_003 + 3, 'exactly the pin entries of the listed versions and the deploy log, no histories');
    } finally {
      await engine.close();
    }
  });
});

describe('startup', () => {
  test('a corrupt package row is skipped loudly; the others keep working', async () => {
    const state = path.join(work.dir, 'state-corrupt');
    let { engine } = await openEngine(state);
    await engine.loadPackage({ path: v1.path });
    await engine.loadPackage({ path: approval.path });
    await engine.store.write([{ type: 'put', key: K.packageMeta('hello', v1.version), value: new TextEncoder().encode('{"oops":') }], { sync: true });
    await engine.close();

    let warnings: string[];
    ({ engine, warnings } = await openEngine(state));
    try {
      assert.ok(warnings.some((w) => w.includes('hello') && /skipping/.test(w)), warnings.join('\n'));
      assert.ok(warnings.some((w) => /route of 'hello'/.test(w)), 'the route to the skipped version is ignored with a warning');
      assert.equal(engine.catalog.routed('approval')?.version, approval.version);
      assert.equal((await engine.listWorkflowVersions()).length, 1);
    } finally {
      await engine.close();
    }
  });

  test('a state directory that does not exist is not created by a read', async () => {
    const state = path.join(work.dir, 'never-created');
    const error = await rejects(Engine.open({ stateDir: state, create: false, lockTimeoutMs: 1000 }), 'not_found');
    assert.equal(error.details.state_dir, state);
    assert.equal(existsSync(state), false);
    // an empty directory is a fresh state directory: it reads as empty, and stays empty
    mkdirSync(state);
    const engine = await Engine.open({ stateDir: state, create: false, lockTimeoutMs: 1000 });
    try {
      assert.deepEqual(await engine.listWorkflowVersions(), []);
      await rejects(engine.routeWorkflowVersion('hello', 'abcd'), 'not_found');
    } finally {
      await engine.close();
    }
    assert.deepEqual(readdirSync(state), []);
  });
});

describe('shutdown gate', () => {
  test('after shutdown begins, load, route and unload are refused', async () => {
    const state = path.join(work.dir, 'state-shutdown');
    const { engine } = await openEngine(state);
    await engine.loadPackage({ path: v1.path });
    const closing = engine.gate.close();
    await rejects(engine.loadPackage({ path: v2.path }), 'shutting_down');
    await rejects(engine.routeWorkflowVersion('hello', v1.version), 'shutting_down');
    await rejects(engine.unloadWorkflowVersion('hello', v1.version), 'shutting_down');
    await closing;
    await engine.close();
  });
});

describe('route flip under concurrent starts', () => {
  test('every start is on one version; after the first new one, no old one', async () => {
    const state = path.join(work.dir, 'state-flip');
    const { engine } = await openEngine(state);
    try {
      await engine.loadPackage({ path: v1.path });
      const starts: Promise<{ version: string }>[] = [];
      let loaded = false;
      const load = (async () => {
        await new Promise((r) => setTimeout(r, 15));
        await engine.loadPackage({ path: v2.path });
        loaded = true;
      })();
      for (let i = 0; i < 200 && (!loaded || i < 20); i++) {
        starts.push(engine.runs.start('hello', { name: `n${i}` }, { workflowId: `flip-${i}` }));
        await new Promise((r) => setImmediate(r));
      }
      await load;
      for (let i = 0; i < 10; i++) starts.push(engine.runs.start('hello', { name: 'after' }, { workflowId: `after-${i}` }));
      const versions = (await Promise.all(starts)).map((s) => s.version);
      const firstNew = versions.indexOf(v2.version);
      assert.ok(firstNew > 0, 'some starts ran before the flip and some after');
      if (TEST_BACKEND === 'level') {
        // In one process over LevelDB, starts resolve in call order.
        assert.ok(versions.slice(firstNew).every((v) => v === v2.version), 'no start after the first v2 one landed on v1');
        assert.ok(versions.slice(0, firstNew).every((v) => v === v1.version));
      } else {
        // On PostgreSQL a start records the version routed when its transaction runs, so calls
        // made together may land either side of the flip; every start made after the load
        // returned lands on v2 (the contract's guarantee).
        assert.ok(versions.slice(-10).every((v) => v === v2.version), 'no start made after load returned landed on v1');
        assert.ok(versions.every((v) => v === v1.version || v === v2.version));
      }
      for (const [i, v] of versions.entries()) {
        const id = i < versions.length - 10 ? `flip-${i}` : `after-${i - (versions.length - 10)}`;
        const shown = await engine.runs.show(id);
        assert.equal(shown.version, v, `${id} ran entirely on the version it resolved`);
        assert.equal((shown.history[0] as { package_version: string }).package_version, v);
      }
    } finally {
      await engine.close();
    }
  });
});
