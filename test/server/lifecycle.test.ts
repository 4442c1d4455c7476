// The life of `aion serve` with its control socket: readiness, owner-only modes, runs it
// executes, SIGTERM/SIGINT, a stale socket left by a killed server, a second server on the
// same directory, and a state directory too deep for a socket path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aionAsync, tempDir } from '../helpers/cli.js';
import { alive, pack, startServe } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const holderOf = (stateDir: string) => JSON.parse(readFileSync(path.join(stateDir, 'holder.json'), 'utf8'));

test('serve listens on an owner-only socket named in the holder file; SIGTERM exits 0 and removes it', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const server = await startServe(stateDir, ['--json']);
    assert.equal(server.socket, path.join(stateDir, 'run', 'control.sock'));
    assert.equal(lstatSync(server.socket).mode & 0o777, 0o600);
    assert.ok(lstatSync(server.socket).isSocket());
    assert.equal(statSync(path.join(stateDir, 'run')).mode & 0o777, 0o700);
    const holder = holderOf(stateDir);
    assert.equal(holder.pid, server.pid);
    assert.equal(holder.socket, server.socket);
    assert.equal(holder.command, 'aion serve');

    const exit = await server.stop('SIGTERM');
    assert.equal(exit.code, 0, server.stderr());
    assert.equal(existsSync(server.socket), false, 'socket removed');
    assert.equal(existsSync(path.join(stateDir, 'holder.json')), false, 'holder file removed');
    assert.deepEqual(JSON.parse(server.stdout()), { recovered: 0, timers_fired: 0, still_running: 0 });
  } finally {
    cleanup();
  }
});

test('SIGINT stops the server the same way; runs parked in it are recovered by the next one', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const approval = pack('approval', dir);
    const server = await startServe(stateDir);
    assert.equal((await aionAsync(['--state-dir', stateDir, 'load', approval.path])).code, 0);
    const started = await aionAsync(['--state-dir', stateDir, '--json', 'start', 'approval', '--id', 'parked']);
    assert.equal(started.json.status, 'running');
    const exit = await server.stop('SIGINT');
    assert.equal(exit.code, 0, server.stderr());
    assert.equal(existsSync(server.socket), false);

    const again = await startServe(stateDir, ['--json']);
    try {
      const signalled = await aionAsync(['--state-dir', stateDir, '--json', 'signal', 'parked', 'approve', '--input', '1']);
      assert.equal(signalled.json.status, 'completed', signalled.stdout + signalled.stderr);
    } finally {
      assert.equal((await again.stop()).code, 0);
    }
    assert.equal(JSON.parse(again.stdout()).recovered, 1);
  } finally {
    cleanup();
  }
});

test('runs started over the socket are executed by the server: their timers fire there', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const sleeper = pack('sleeper', dir);
    const server = await startServe(stateDir);
    try {
      assert.equal((await aionAsync(['--state-dir', stateDir, 'load', sleeper.path])).code, 0);
      const started = await aionAsync(['--state-dir', stateDir, '--json', 'start', 'sleeper', '--id', 'nap']);
      assert.equal(started.json.status, 'running');
      const versions = await aionAsync(['--state-dir', stateDir, '--json', 'versions', 'sleeper']);
      assert.equal(versions.json.versions[0].pins.live, 1, 'a live run of the server');
      let status = 'running';
      for (let i = 0; i < 50 && status === 'running'; i++) {
        await sleep(200);
        status = (await aionAsync(['--state-dir', stateDir, '--json', 'show', 'nap'])).json.status;
      }
      assert.equal(status, 'completed', 'the server fired the one-second timer');
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  } finally {
    cleanup();
  }
});

test('a stale socket left by a killed server: commands fall back at once, the next server removes it', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const hello = pack('hello_v1', dir);
    const server = await startServe(stateDir);
    assert.equal((await aionAsync(['--state-dir', stateDir, 'load', hello.path])).code, 0);
    await server.stop('SIGKILL');
    assert.ok(lstatSync(server.socket).isSocket(), 'the killed server left its socket behind');
    assert.equal(holderOf(stateDir).socket, server.socket, 'and its holder file');

    const t0 = Date.now();
    const versions = await aionAsync(['--state-dir', stateDir, '--json', '--lock-timeout', '20', 'versions']);
    assert.equal(versions.code, 0, versions.stdout + versions.stderr);
    assert.equal(versions.json.versions[0].version, hello.version);
    assert.ok(Date.now() - t0 < 5000, 'no waiting on a dead server');

    const next = await startServe(stateDir);
    try {
      assert.equal(next.socket, server.socket);
      assert.equal(holderOf(stateDir).pid, next.pid);
      const started = await aionAsync(['--state-dir', stateDir, '--json', 'start', 'hello']);
      assert.equal(started.json.status, 'completed');
    } finally {
      assert.equal((await next.stop()).code, 0);
    }
  } finally {
    cleanup();
  }
});

test('a second serve on the same directory refuses at once, naming the running server', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const server = await startServe(stateDir);
    try {
      const t0 = Date.now();
      const second = await aionAsync(['--state-dir', stateDir, '--json', '--lock-timeout', '30', 'serve']);
      assert.ok(Date.now() - t0 < 5000, `refused fast, took ${Date.now() - t0}ms`);
      assert.equal(second.code, 8, second.stdout + second.stderr);
      assert.equal(second.json.error.code, 'state_busy');
      assert.match(second.json.error.message, new RegExp(`pid ${server.pid}`));
      assert.equal(second.json.error.holder.pid, server.pid);
      const human = await aionAsync(['--state-dir', stateDir, 'serve']);
      assert.equal(human.code, 8);
      assert.match(human.stderr, new RegExp(`already served by aion serve \\(pid ${server.pid}\\)`));
      assert.ok(alive(server.pid));
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  } finally {
    cleanup();
  }
});

test('a state directory too deep for a socket path gets a short socket under the temp directory', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    let stateDir = dir;
    while (stateDir.length <= 130) stateDir = path.join(stateDir, 'a-rather-long-directory-name');
    mkdirSync(stateDir, { recursive: true });
    const approval = pack('approval', dir);
    const server = await startServe(stateDir);
    try {
      assert.ok(Buffer.byteLength(server.socket) <= 103, server.socket);
      assert.equal(path.dirname(server.socket), path.join(os.tmpdir(), `aion-${process.getuid!()}`));
      assert.match(path.basename(server.socket), /^[0-9a-f]{16}\.sock$/);
      assert.equal(statSync(path.dirname(server.socket)).mode & 0o777, 0o700);
      assert.equal(lstatSync(server.socket).mode & 0o777, 0o600);
      assert.equal(holderOf(stateDir).socket, server.socket);

      assert.equal((await aionAsync(['--state-dir', stateDir, 'load', approval.path])).code, 0);
      const started = await aionAsync(['--state-dir', stateDir, '--json', 'start', 'approval', '--id', 'deep']);
      assert.equal(started.json.status, 'running');
      const refused = await aionAsync(['--state-dir', stateDir, '--json', 'unload', 'approval', approval.version]);
      assert.equal(refused.code, 5, 'routed');
      const versions = await aionAsync(['--state-dir', stateDir, '--json', 'versions']);
      assert.equal(versions.json.versions[0].pins.live, 1, 'the command reached the server');
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
    assert.equal(existsSync(server.socket), false);
  } finally {
    cleanup();
  }
});

test('a control socket owned by another user is refused', { timeout: 60_000, skip: process.getuid?.() !== 0 ? 'needs root to chown' : false }, async () => {
  const { dir, cleanup } = tempDir('aion-server-life-');
  try {
    const stateDir = path.join(dir, 'state');
    const server = await startServe(stateDir);
    try {
      chownSync(server.socket, 65534, 65534);
      const r = await aionAsync(['--state-dir', stateDir, '--json', 'versions']);
      assert.equal(r.code, 8, r.stdout + r.stderr);
      assert.match(r.json.error.message, /owned by uid 65534, not by you/);
    } finally {
      await server.stop();
    }
  } finally {
    cleanup();
  }
});
