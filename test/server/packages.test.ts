// `aion serve --package` (startup packages for immutable images) and the drain after
// SIGTERM, through bin/aion: a startup package routes its types at boot without being
// persisted, `versions`, `status` and `top` say `source: startup`; a run on a startup version
// needs that archive again at the next boot; during the drain reads are answered by the
// server and mutations refused with shutting_down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { aion, aionAsync, tempDir } from '../helpers/cli.js';
import { pack, startServe } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serve --package routes its types at boot, in memory only; a run on it needs the archive at the next boot', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-startup-');
  try {
    const stateDir = path.join(dir, 'state');
    const a = (args: string[]) => aion(['--state-dir', stateDir, ...args, '--json']);
    const h1 = pack('hello_v1', dir);
    const h2 = pack('hello_v2', dir);
    const family = pack('family_v1', dir);
    assert.equal(a(['load', h1.path]).code, 0);

    let server = await startServe(stateDir, ['--package', h2.path, '--package', family.path]);
    try {
      const versions = a(['versions']).json.versions;
      assert.deepEqual(versions.map((v: any) => [v.workflow_type, v.version, v.state, v.source]), [
        ['family', family.version, 'routed', 'startup'],
        ['family_child', family.version, 'drained', 'startup'],
        ['family_echo', family.version, 'routed', 'startup'],
        ['hello', h1.version, 'drained', 'loaded'],
        ['hello', h2.version, 'routed', 'startup'],
      ]);
      const status = a(['status', 'hello']).json.types[0];
      assert.deepEqual([status.routed, status.source], [h2.version, 'startup']);
      const top = a(['top']).json;
      assert.ok(top.versions.some((v: any) => v.version === h2.version && v.source === 'startup'), JSON.stringify(top).slice(0, 300));
      const text = aion(['--state-dir', stateDir, 'versions']);
      assert.match(text.stdout, /startup \(serve --package\)/);

      assert.equal(a(['start', 'hello', '--input', '{"name":"img"}']).json.version, h2.version);
      // The persisted route still names v1: it is routed again once this server stops.
      const unload = a(['unload', 'hello', h1.version]);
      assert.equal(unload.code, 5, unload.stdout);
      assert.match(unload.json.error.message, /persisted route of 'hello'/);
      const parked = a(['start', 'family', '--id', 'f1', '--input', '{"name":"x","wait":true}']);
      assert.deepEqual([parked.code, parked.json.version, parked.json.status], [0, family.version, 'running'], parked.stderr);
    } finally {
      assert.equal((await server.stop()).code, 0, server.stderr());
    }

    // Nothing of the startup packages was persisted; the persisted route is back.
    const after = a(['versions']).json.versions;
    assert.deepEqual(after.map((v: any) => [v.workflow_type, v.version, v.state, v.source]), [['hello', h1.version, 'routed', 'loaded']]);
    assert.equal(a(['history']).json.history.length, 1, 'startup packages leave no deploy record');

    // Without the archive, the run on the startup version alone fails its recovery.
    const idle = aion(['--state-dir', stateDir, 'serve', '--until-idle']);
    assert.equal(idle.code, 0, idle.stderr);
    assert.match(idle.stderr, /version [0-9a-f]{12} of 'family' is not loaded, so its runs cannot be recovered/);
    assert.equal(a(['show', 'f1']).json.status, 'running');

    // With it again, the run goes on.
    server = await startServe(stateDir, ['--package', family.path]);
    try {
      const done = a(['signal', 'f1', 'go']);
      assert.deepEqual([done.code, done.json.status], [0, 'completed'], done.stderr);
      assert.equal(a(['show', 'f1']).json.result.child.version, family.version);
    } finally {
      await server.stop();
    }
  } finally {
    cleanup();
  }
});

test('a startup package that does not load stops serve before it listens', () => {
  const { dir, cleanup } = tempDir('aion-startup-bad-');
  try {
    const r = aion(['--state-dir', path.join(dir, 'state'), 'serve', '--package', path.join(dir, 'missing.aion'), '--json']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.json.error.message, /no such archive/);
    assert.doesNotMatch(r.stderr, /listening on/);
  } finally {
    cleanup();
  }
});

test('during the drain after SIGTERM, reads are answered by the server and mutations refused with shutting_down', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-drain-');
  try {
    const stateDir = path.join(dir, 'state');
    const slow = pack('slow_activity', dir);
    const hello = pack('hello_v1', dir);
    const server = await startServe(stateDir);
    const s = ['--state-dir', stateDir, '--lock-timeout', '0'];
    try {
      assert.equal(aion([...s, 'load', slow.path, '--json']).code, 0);
      // A run in a 4 s activity keeps the drain going after the signal.
      const running = aionAsync([...s, 'start', 'slow_activity', '--id', 'slow-1', '--input', '{"ms":4000}', '--json']);
      for (let i = 0; i < 200 && !server.stderr().includes('SLOW-ACTIVITY-STARTED'); i++) await sleep(25);
      assert.match(server.stderr(), /SLOW-ACTIVITY-STARTED/);
      server.child.kill('SIGTERM');
      await sleep(200);
      const [versions, runs, show, status, history, load, start] = await Promise.all([
        aionAsync([...s, 'versions', '--json']),
        aionAsync([...s, 'runs', '--json']),
        aionAsync([...s, 'show', 'slow-1', '--json']),
        aionAsync([...s, 'status', '--json']),
        aionAsync([...s, 'history', '--json']),
        aionAsync([...s, 'load', hello.path, '--json']),
        aionAsync([...s, 'start', 'slow_activity', '--json']),
      ]);
      assert.equal(versions.code, 0, versions.stdout + versions.stderr);
      // Only the live server counts the run as live (an embedded reader would see it recoverable).
      assert.equal(versions.json.versions[0].pins.live, 1, JSON.stringify(versions.json));
      for (const r of [runs, show, status, history]) assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(show.json.status, 'running');
      for (const r of [load, start]) {
        assert.equal(r.code, 9, r.stdout + r.stderr);
        assert.equal(r.json.error.code, 'shutting_down');
      }
      const started = await running;
      assert.deepEqual([started.code, started.json.status], [0, 'completed'], 'the request in flight completes');
      assert.equal((await server.exited).code, 0);
    } finally {
      await server.stop();
    }
  } finally {
    cleanup();
  }
});

test('through aion serve, a package with several types behaves as embedded: one load, the child on its parent version, unload refused naming type and holder', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-served-family-');
  try {
    const stateDir = path.join(dir, 'state');
    const a = (args: string[]) => aion(['--state-dir', stateDir, ...args, '--json']);
    const v1 = pack('family_v1', dir);
    const v2 = pack('family_v2', dir);
    const server = await startServe(stateDir);
    try {
      assert.deepEqual(a(['load', v1.path]).json.workflow_types, ['family', 'family_child', 'family_echo']);
      assert.equal(a(['start', 'family', '--id', 'p1', '--input', '{"name":"x","wait":true}']).json.status, 'running');
      assert.equal(a(['start', 'family_child', '--input', '{"name":"x"}']).code, 3);
      const bad = a(['start', 'family', '--input', '{"name":1}']);
      assert.deepEqual([bad.code, bad.json.error.schema_errors], [2, [{ path: '/name', message: 'must be string' }]]);
      assert.equal(a(['load', v2.path]).code, 0);
      const pinned = a(['unload', 'family_child', v1.version]);
      assert.equal(pinned.code, 4, pinned.stdout);
      assert.deepEqual(pinned.json.error.holders, [{ kind: 'live_run', workflow_id: 'p1', run_id: pinned.json.error.holders[0].run_id, workflow_type: 'family' }]);
      assert.equal(a(['signal', 'p1', 'go']).json.status, 'completed');
      assert.equal(a(['show', 'p1']).json.result.child.version, v1.version);
      assert.equal(a(['unload', 'family', v1.version]).code, 0);
      assert.equal(a(['versions']).json.versions.length, 3);
    } finally {
      assert.equal((await server.stop()).code, 0, server.stderr());
    }
  } finally {
    cleanup();
  }
});
