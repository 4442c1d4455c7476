// The deploy commands through the CLI: the flow and its refusals in-process (runCli on fake
// streams, a fresh engine for each command, as a new process would open); what needs
// processes of their own, concurrent deploys and a held directory, through bin/aion.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aion, aionAsync, ROOT, tempDir } from '../helpers/cli.js';
import { aionIn } from '../helpers/inprocess.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let approval: Packed;

before(async () => {
  work = tempDir();
  v1 = await packFixture('hello_v1', work.dir, 'hello-v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'hello-v2.aion');
  approval = await packFixture('approval', work.dir);
});
after(() => work.cleanup());

const ANSI = /\x1b\[/;

describe('deploy flow through the CLI', () => {
  test('load v1, load v2, route back, versions after reopening, unload rules', async () => {
    const s = ['--state-dir', path.join(work.dir, 'flow')];
    const l1 = await aionIn([...s, 'load', v1.path, '--json']);
    assert.equal(l1.code, 0, l1.stderr);
    assert.deepEqual(Object.keys(l1.json).sort(), ['deployed_entry_module', 'entry_function', 'freshly_loaded', 'label', 'previous', 'route_changed', 'routed', 'version', 'workflow_type', 'workflow_types']);
    assert.equal(l1.json.freshly_loaded, true);

    const l2 = await aionIn([...s, 'load', v2.path, '--json']);
    assert.deepEqual([l2.code, l2.json.route_changed, l2.json.previous], [0, true, v1.version]);

    const back = await aionIn([...s, 'route', 'hello', v1.version.slice(0, 10), '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(back.json, { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version });

    const listed = await aionIn([...s, 'versions', '--json']);
    assert.equal(listed.code, 0);
    assert.deepEqual(
      listed.json.versions.map((v: { version: string; route_active: boolean }) => [v.version, v.route_active]),
      [[v1.version, true], [v2.version, false]],
    );
    const first = listed.json.versions[0];
    for (const field of ['workflow_type', 'version', 'deployed_entry_module', 'entry_function', 'manifest_version', 'loaded_at', 'route_active', 'pins']) {
      assert.ok(field in first, `versions[] has ${field}`);
    }
    assert.match(first.loaded_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(first.pins, { live: 0, recoverable: 0, recorded_children: 0 });

    const routed = await aionIn([...s, 'unload', 'hello', v1.version, '--json']);
    assert.equal(routed.code, 5);
    assert.equal(routed.json.error.code, 'route_active');

    const gone = await aionIn([...s, 'unload', 'hello', v2.version.slice(0, 8)]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(gone.stdout, /unloaded hello/);

    const after = await aionIn([...s, 'versions', 'hello', '--json']);
    assert.deepEqual(after.json.versions.map((v: { version: string }) => v.version), [v1.version], 'the unloaded version does not return in a new process');
  });

  test('refusals are readable and carry the contract JSON', async () => {
    const s = ['--state-dir', path.join(work.dir, 'refusals')];
    await aionIn([...s, 'load', v1.path]);
    const unknown = await aionIn([...s, 'route', 'hello', 'abcdef12', '--json']);
    assert.equal(unknown.code, 3);
    assert.equal(unknown.json.error.code, 'not_found');
    assert.deepEqual(unknown.json.error.loaded, [v1.version]);

    const text = await aionIn([...s, 'route', 'hello', 'abcdef12']);
    assert.equal(text.code, 3);
    assert.match(text.stderr, /error: version 'abcdef12' of workflow type 'hello' is not loaded/);
    assert.match(text.stderr, /hint: .*aion versions hello/);
    assert.equal(text.stdout, '');

    const routed = await aionIn([...s, 'unload', 'hello', v1.version]);
    assert.equal(routed.code, 5);
    assert.match(routed.stderr, /routed version/);
    assert.match(routed.stderr, /hint: load another version/);

    const badPrefix = await aionIn([...s, 'unload', 'hello', 'zz', '--json']);
    assert.equal(badPrefix.code, 2);
    assert.equal(badPrefix.json.error.code, 'usage');

    const noType = await aionIn([...s, 'versions', 'nope', '--json']);
    assert.equal(noType.code, 3);
    assert.deepEqual(noType.json.error.loaded_types, ['hello']);

    const missing = await aionIn([...s, 'load', path.join(work.dir, 'nope.aion'), '--json']);
    assert.equal(missing.code, 2);
    assert.match(missing.json.error.message, /no such archive/);
  });

  test('a version pinned by a recoverable run is refused naming it; terminating it frees the version', async () => {
    const s = ['--state-dir', path.join(work.dir, 'pinned')];
    await aionIn([...s, 'load', approval.path]);
    const started = await aionIn([...s, 'start', 'approval', '--id', 'order-7', '--json']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.json.status, 'running');
    const av2 = await packVariant('approval', work.dir, 'approval-v2');
    const loaded = await aionIn([...s, 'load', av2.path]);
    assert.equal(loaded.code, 0, loaded.stderr);
    const refused = await aionIn([...s, 'unload', 'approval', approval.version, '--json']);
    assert.equal(refused.code, 4);
    assert.deepEqual(refused.json.error.pinned_by, { kind: 'recoverable_run', workflow_id: 'order-7', run_id: started.json.run_id });
    assert.equal(refused.json.error.holders_total, 1);
    const text = await aionIn([...s, 'unload', 'approval', approval.version]);
    assert.match(text.stderr, /recoverable run order-7/);
    assert.match(text.stderr, /aion terminate order-7/);

    const listed = await aionIn([...s, 'versions', 'approval', '--json']);
    assert.deepEqual(listed.json.versions[0].pins, { live: 0, recoverable: 1, recorded_children: 0 });
    assert.equal(listed.json.versions[0].state, 'draining');

    assert.equal((await aionIn([...s, 'terminate', 'order-7'])).code, 0);
    const ok = await aionIn([...s, 'unload', 'approval', approval.version, '--json']);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.json.unloaded, true);
  });

  test('piped output is plain: no escape codes, full hashes', async () => {
    const s = ['--state-dir', path.join(work.dir, 'plain')];
    await aionIn([...s, 'load', v1.path]);
    const listed = await aionIn([...s, 'versions']);
    assert.equal(listed.code, 0);
    assert.doesNotMatch(listed.stdout, ANSI);
    assert.match(listed.stdout, new RegExp(v1.version));
    assert.match(listed.stdout, /routed/);
    const err = await aionIn([...s, 'route', 'hello', 'ffffffff']);
    assert.doesNotMatch(err.stderr, ANSI);
  });

  test('a read on a missing state directory is not_found (exit 3) and does not create it', async () => {
    const dir = path.join(work.dir, 'absent');
    const listed = await aionIn(['--state-dir', dir, 'versions', '--json']);
    assert.equal(listed.code, 3);
    assert.deepEqual(listed.json.error, { code: 'not_found', message: `state directory ${dir} does not exist`, state_dir: dir });
    const routed = await aionIn(['--state-dir', dir, 'route', 'hello', 'abcd']);
    assert.equal(routed.code, 3);
    assert.equal((await aionIn(['--state-dir', dir, 'versions'])).stdout, '');
    assert.equal(existsSync(dir), false);
  });

  test('global options are accepted after the command, and AION_STATE_DIR is honoured', async () => {
    const dir = path.join(work.dir, 'env-dir');
    const loaded = await aionIn(['load', v1.path, '--json'], { env: { AION_STATE_DIR: dir } });
    assert.equal(loaded.code, 0, loaded.stderr);
    const listed = await aionIn(['versions', '--state-dir', dir, '--json']);
    assert.equal(listed.json.versions.length, 1);
  });
});

describe('two processes on one state directory', () => {
  test('concurrent deploys both succeed in turn', async () => {
    const s = ['--state-dir', path.join(work.dir, 'concurrent')];
    const results = await Promise.all([
      aionAsync([...s, 'load', v1.path, '--json']),
      aionAsync([...s, 'load', approval.path, '--json']),
      aionAsync([...s, 'load', v2.path, '--json']),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr + r.stdout);
    const listed = aion([...s, 'versions', '--json']);
    assert.equal(listed.json.versions.length, 3);
  });

  test('a held directory: waits, says who holds it, then fails state_busy (exit 8); a killed holder blocks nothing', async () => {
    const dir = path.join(work.dir, 'held');
    const levelModule = pathToFileURL(path.join(ROOT, 'dist/src/store/level.js')).href;
    const holder = spawn(
      process.execPath,
      ['-e', `import(${JSON.stringify(levelModule)}).then(async (m) => { await m.openLevel(${JSON.stringify(dir)}, { lockTimeoutMs: 0, command: 'test-holder' }); console.log('held'); setInterval(() => {}, 1000); })`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
        holder.on('exit', () => reject(new Error('holder exited early')));
      });
      const busy = await aionAsync(['--state-dir', dir, '--lock-timeout', '0.5', 'load', v1.path, '--json']);
      assert.equal(busy.code, 8);
      assert.equal(busy.json.error.code, 'state_busy');
      assert.match(busy.json.error.message, new RegExp(`pid ${holder.pid}`));
      assert.match(busy.json.error.message, /test-holder/);
      assert.match(busy.stderr, /waiting up to .* held by pid/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    const after = await aionAsync(['--state-dir', dir, '--lock-timeout', '2', 'load', v1.path, '--json']);
    assert.equal(after.code, 0, after.stderr);
  });
});
