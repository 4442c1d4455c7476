// The control server and the remote client in one process: typed errors rebuilt on the
// client, the switch to a server found while waiting for the lock, and shutdown (new requests
// refused with `shutting_down`, requests in flight waited for, the socket removed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { Engine } from '../../src/engine/engine.js';
import { openClient, EmbeddedClient } from '../../src/client/client.js';
import { connectServer, RemoteClient } from '../../src/client/remote.js';
import { ControlServer, forwardingWarnings } from '../../src/server/control.js';
import { putBytes } from '../../src/store/store.js';
import { K } from '../../src/store/keys.js';
import { prepareSocketDir, socketPlace } from '../../src/server/socket.js';
import { recordHolderSocket } from '../../src/store/holder.js';
import { AionError } from '../../src/errors.js';
import { pack } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serveInProcess(stateDir: string, serverWarnings: string[] = []) {
  const engine = await Engine.open({
    stateDir,
    create: true,
    lockTimeoutMs: 5000,
    command: 'aion serve',
    onWarning: forwardingWarnings((m) => serverWarnings.push(m)),
  });
  engine.runs.residentAll = true;
  const place = socketPlace(stateDir);
  prepareSocketDir(place.dir);
  const control = await ControlServer.listen({ engine, stateDir, socketPath: place.path });
  recordHolderSocket(stateDir, place.path);
  return { engine, control, socket: place.path };
}

test('the remote client rebuilds results and typed errors exactly', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  const hello = pack('hello_v1', dir);
  const { engine, control } = await serveInProcess(stateDir);
  try {
    const client = await openClient({ stateDir, lockTimeoutMs: 1000, write: true, command: 'test' });
    assert.ok(client instanceof RemoteClient, 'a live server is used');
    try {
      const loaded = await client.load({ archive: path.relative(process.cwd(), hello.path) });
      assert.equal(loaded.version, hello.version, 'relative archive paths are resolved by the client');
      const embedded = new EmbeddedClient(engine);
      assert.deepEqual(await client.versions(), await embedded.versions());
      const error = await client.unload({ workflow_type: 'hello', version: hello.version }).then(
        () => assert.fail('unload of the routed version must fail'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof AionError);
      assert.equal(error.code, 'route_active');
      assert.equal(error.exitCode, 5);
      assert.deepEqual(error.details, { workflow_type: 'hello', version: hello.version, role: 'routed' });
      assert.match(error.hint ?? '', /load another version/);
      const direct = await embedded.unload({ workflow_type: 'hello', version: hello.version }).catch((e: AionError) => e);
      assert.deepEqual((error as AionError).toJSON(), (direct as AionError).toJSON());
      const started = await client.start({ workflow_type: 'hello', input: { name: 'ada' }, workflow_id: 'w1' });
      assert.equal(started.status, 'completed');
      assert.deepEqual((await client.show({ workflow_id: 'w1' })).result, { greeting: 'hello, ada' });
      const conflict = await client.terminate({ workflow_id: 'w1', reason: 'why' }).catch((e: AionError) => e);
      assert.equal((conflict as AionError).code, 'not_found');
    } finally {
      await client.close();
    }
  } finally {
    await control.close();
    await engine.close();
    cleanup();
  }
});

test('a command waiting for the lock switches to the socket once the holder turns out to be a server', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  // Hold the directory, not yet as a server (a server still recovering its runs looks so).
  const engine = await Engine.open({ stateDir, create: true, lockTimeoutMs: 5000, command: 'aion serve' });
  let control: ControlServer | undefined;
  try {
    let waited = false;
    const opening = openClient({ stateDir, lockTimeoutMs: 10_000, write: true, command: 'test', onWait: () => (waited = true) });
    await sleep(300);
    const place = socketPlace(stateDir);
    prepareSocketDir(place.dir);
    control = await ControlServer.listen({ engine, stateDir, socketPath: place.path });
    recordHolderSocket(stateDir, place.path);
    const t0 = Date.now();
    const client = await opening;
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(waited, 'it did wait for the lock first');
    assert.ok(client instanceof RemoteClient);
    assert.deepEqual(await client.versions(), []);
    await client.close();
  } finally {
    await control?.close();
    await engine.close();
    cleanup();
  }
});

test('closing the control server refuses new requests, waits for those in flight, removes the socket', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  const { engine, control, socket } = await serveInProcess(stateDir);
  try {
    // A slow operation, in flight when shutdown begins.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const original = engine.listWorkflowVersions.bind(engine);
    engine.listWorkflowVersions = async (t?: string) => {
      await gate;
      return original(t);
    };
    const client = (await connectServer(stateDir))!;
    assert.ok(client);
    const slow = client.versions();
    await sleep(50);
    let closed = false;
    const closing = control.close().then(() => (closed = true));
    const refused = await client.show({ workflow_id: 'anything' }).catch((e: AionError) => e);
    assert.ok(refused instanceof AionError);
    assert.equal(refused.code, 'shutting_down');
    assert.equal(refused.exitCode, 9);
    assert.equal(existsSync(socket), false, 'no longer accepting: the socket file is gone');
    assert.equal(await connectServer(stateDir), undefined, 'new connections find no server');
    await sleep(100);
    assert.equal(closed, false, 'close waits for the request in flight');
    release();
    assert.deepEqual(await slow, [], 'the request in flight completes');
    await closing;
    assert.equal(closed, true);
    await client.close();
  } finally {
    await control.close();
    await engine.close();
    cleanup();
  }
});

test('warnings raised while serving a request reach the client that sent it', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  const serverWarnings: string[] = [];
  const { engine, control } = await serveInProcess(stateDir, serverWarnings);
  try {
    await engine.store.write([putBytes(K.run('broken'), new TextEncoder().encode('{not json'))], { sync: true });
    const clientWarnings: string[] = [];
    const client = await openClient({ stateDir, lockTimeoutMs: 1000, write: false, command: 'test', onWarning: (m) => clientWarnings.push(m) });
    assert.ok(client instanceof RemoteClient);
    assert.deepEqual(await client.runs(), []);
    assert.equal(clientWarnings.length, 1);
    assert.match(clientWarnings[0]!, /skipping corrupt run record run\/broken/);
    assert.deepEqual(serverWarnings, clientWarnings, 'the server logs it too');
    await client.close();
  } finally {
    await control.close();
    await engine.close();
    cleanup();
  }
});

test('unload through the server names an in-flight start', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  const v1 = pack('hello_v1', dir);
  const v2 = pack('hello_v2', dir);
  const { engine, control } = await serveInProcess(stateDir);
  try {
    const client = (await connectServer(stateDir))!;
    await client.load({ archive: v1.path });
    const pin = engine.catalog.pinStart('hello', 'in-flight'); // a start that resolved v1 and is not recorded yet
    await client.load({ archive: v2.path });
    const refused = await client.unload({ workflow_type: 'hello', version: v1.version }).catch((e: AionError) => e);
    assert.ok(refused instanceof AionError);
    assert.equal(refused.code, 'version_pinned');
    assert.equal(refused.exitCode, 4);
    assert.deepEqual(refused.details.pinned_by, { kind: 'in_flight_start' });
    pin.release();
    assert.equal((await client.unload({ workflow_type: 'hello', version: v1.version })).unloaded, true);
    await client.close();
  } finally {
    await control.close();
    await engine.close();
    cleanup();
  }
});

test('draining answers every read operation of the table and refuses every mutation; close then refuses all', async () => {
  const { dir, cleanup } = tempDir('aion-server-inproc-');
  const stateDir = path.join(dir, 'state');
  const hello = pack('hello_v1', dir);
  const { engine, control, socket } = await serveInProcess(stateDir);
  try {
    const client = (await connectServer(stateDir))!;
    await client.load({ archive: hello.path });
    await client.start({ workflow_type: 'hello', workflow_id: 'w1', input: { name: 'x' } });
    control.drain();
    assert.equal(existsSync(socket), true, 'still listening while draining');
    const fresh = await connectServer(stateDir);
    assert.ok(fresh, 'a new client connects during the drain');
    assert.equal((await fresh.versions()).length, 1);
    assert.equal((await fresh.runs()).length, 1);
    assert.equal((await fresh.show({ workflow_id: 'w1' })).status, 'completed');
    assert.equal((await fresh.status()).length, 1);
    assert.equal((await fresh.history()).length, 1);
    assert.equal((await fresh.holders({ workflow_type: 'hello', version: hello.version })).holders_total, 0);
    for (const mutation of [
      () => fresh.load({ archive: hello.path }),
      () => fresh.route({ workflow_type: 'hello', version: hello.version }),
      () => fresh.start({ workflow_type: 'hello' }),
      () => fresh.unload({ workflow_type: 'hello', version: hello.version }),
      () => fresh.signal({ workflow_id: 'w1', name: 'x' }),
    ]) {
      const refused = await mutation().then(() => assert.fail('a mutation during the drain must be refused'), (e: unknown) => e);
      assert.ok(refused instanceof AionError);
      assert.equal(refused.code, 'shutting_down');
    }
    await control.close();
    assert.equal(existsSync(socket), false);
    await client.close();
    await fresh.close();
  } finally {
    await control.close();
    await engine.close();
    cleanup();
  }
});
