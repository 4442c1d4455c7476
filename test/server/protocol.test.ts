// The control protocol against a live `aion serve`: bad input of every kind gets an error reply
// (or, for a half-sent request, silence), and none of it crashes the server or changes state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { aionAsync, tempDir } from '../helpers/cli.js';
import { alive, pack, RawClient, startServe, type Packed, type Served } from './support.js';
import { MAX_REQUEST_BYTES } from '../../src/client/protocol.js';

let dir: string;
let cleanup: () => void;
let stateDir: string;
let server: Served;
let hello: Packed;

before(async () => {
  ({ dir, cleanup } = tempDir('aion-server-protocol-'));
  stateDir = path.join(dir, 'state');
  hello = pack('hello_v1', dir);
  server = await startServe(stateDir);
  const loaded = await aionAsync(['--state-dir', stateDir, '--json', 'load', hello.path]);
  assert.equal(loaded.code, 0, loaded.stdout + loaded.stderr);
});

after(async () => {
  const exit = await server.stop();
  assert.equal(exit.code, 0, server.stderr());
  cleanup();
});

async function versionsNow(): Promise<unknown> {
  const r = await aionAsync(['--state-dir', stateDir, '--json', 'versions']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return r.json.versions.map((v: any) => ({ ...v, pins: v.pins }));
}

test('hello and a method call round-trip; replies carry the request id', async () => {
  const c = await RawClient.connect(server.socket);
  try {
    const hi = await c.request('hello', {}, 'h1');
    const st = statSync(stateDir, { bigint: true });
    // state_dir_id: which directory it serves (a client refuses a server of another directory).
    assert.deepEqual(hi.result, { server: 'aion serve', v: 1, pid: server.pid, state_dir: stateDir, state_dir_id: `${st.dev}:${st.ino}` });
    const versions = await c.request('versions', { workflow_type: 'hello' }, 2);
    assert.equal(versions.v, 1);
    assert.equal(versions.result[0].version, hello.version);
    const missing = await c.request('show', { workflow_id: 'nope' }, 3);
    assert.equal(missing.error.code, 'not_found');
    assert.equal(typeof missing.error.message, 'string');
  } finally {
    c.close();
  }
});

test('pipelined requests on one connection all get replies', async () => {
  const c = await RawClient.connect(server.socket);
  try {
    const lines = [1, 2, 3, 4].map((id) => JSON.stringify({ v: 1, id, method: 'versions', params: {} })).join('\n') + '\n';
    await c.write(lines);
    const replies = await c.waitLines(4);
    assert.deepEqual(replies.map((r) => r.id).sort(), [1, 2, 3, 4]);
    assert.ok(replies.every((r) => Array.isArray(r.result)));
  } finally {
    c.close();
  }
});

test('malformed requests get usage errors and the connection stays usable', async () => {
  const before = await versionsNow();
  const c = await RawClient.connect(server.socket);
  try {
    await c.write('this is not json\n');
    await c.write('[1,2,3]\n');
    await c.write('{"v":1,"method":"versions"}\n');
    await c.write('{"v":1,"id":5,"method":"drop_tables","params":{}}\n');
    await c.write('{"v":1,"id":6,"method":"unload","params":{"workflow_type":7,"version":"abcd"}}\n');
    await c.write('{"v":1,"id":7,"method":"load","params":{"archive":"relative.aion"}}\n');
    await c.write('{"v":1,"id":8,"method":"load","params":"x"}\n');
    const replies = await c.waitLines(7);
    assert.equal(replies.length, 7);
    for (const r of replies) {
      assert.equal(r.v, 1);
      assert.equal(r.error?.code, 'usage', JSON.stringify(r));
    }
    // Replies to lines that are not requests come in order; the others carry their ids.
    assert.deepEqual(replies.map((r) => r.id).slice(0, 3), [null, null, null]);
    const byId = new Map(replies.map((r) => [r.id, r.error.message as string]));
    assert.deepEqual([...byId.keys()].filter((k) => k !== null).sort(), [5, 6, 7, 8]);
    assert.match(replies[0].error.message, /not JSON/);
    assert.match(byId.get(5)!, /unknown method 'drop_tables'/);
    assert.match(byId.get(6)!, /'workflow_type' must be a string/);
    assert.match(byId.get(7)!, /absolute path/);
    assert.match(byId.get(8)!, /'params' must be an object/);
    // Still usable.
    const ok = await c.request('hello', {}, 9);
    assert.equal(ok.result.pid, server.pid);
  } finally {
    c.close();
  }
  assert.deepEqual(await versionsNow(), before);
  assert.ok(alive(server.pid));
});

test('a protocol version mismatch is refused naming both versions', async () => {
  const c = await RawClient.connect(server.socket);
  try {
    await c.write(JSON.stringify({ v: 2, id: 1, method: 'load', params: { archive: hello.path } }) + '\n');
    const [reply] = await c.waitLines(1);
    assert.equal(reply.v, 1);
    assert.equal(reply.id, 1);
    assert.equal(reply.error.code, 'usage');
    assert.match(reply.error.message, /version 2/);
    assert.match(reply.error.message, /version 1/);
    assert.deepEqual(reply.error.details, { protocol_version: 1, request_version: 2 });
  } finally {
    c.close();
  }
  assert.ok(alive(server.pid));
});

test('an oversized request gets an error reply and the connection is closed', async () => {
  const before = await versionsNow();
  const c = await RawClient.connect(server.socket);
  try {
    // A start whose input alone is larger than the limit, never finished by a newline.
    const head = '{"v":1,"id":1,"method":"start","params":{"workflow_type":"hello","input":"';
    void c.write(head + 'x'.repeat(MAX_REQUEST_BYTES + 16));
    const replies = await c.waitLines(1);
    assert.equal(replies[0]?.error?.code, 'usage');
    assert.equal(replies[0].id, null);
    assert.match(replies[0].error.message, /too large/);
    assert.ok(await c.waitClosed(), 'the server closes the connection');
  } finally {
    c.close();
  }
  // An oversized line that does end in a newline is refused the same way.
  const c2 = await RawClient.connect(server.socket);
  try {
    void c2.write(JSON.stringify({ v: 1, id: 2, method: 'start', params: { workflow_type: 'hello', input: 'y'.repeat(MAX_REQUEST_BYTES) } }) + '\n');
    const replies = await c2.waitLines(1);
    assert.equal(replies[0]?.error?.code, 'usage');
    assert.ok(await c2.waitClosed());
  } finally {
    c2.close();
  }
  assert.ok(alive(server.pid));
  assert.deepEqual(await versionsNow(), before);
  const runs = await aionAsync(['--state-dir', stateDir, '--json', 'runs']);
  assert.deepEqual(runs.json.runs, [], 'no start was carried out');
});

test('a half-sent request is dropped silently when the client disconnects', async () => {
  const c = await RawClient.connect(server.socket);
  await c.write('{"v":1,"id":1,"method":"start","params":{"workflow_type":"hello","workflow_id":"half"');
  c.close();
  // A half-sent request followed by a half-close (end) is dropped too; the server closes.
  const c2 = await RawClient.connect(server.socket);
  await c2.write('{"v":1,"id":1,"method":"start","params":{"workflow_type":"hello","workflow_id":"half2"');
  c2.socket.end();
  assert.ok(await c2.waitClosed());
  assert.deepEqual(c2.lines, []);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(alive(server.pid));
  const shown = await aionAsync(['--state-dir', stateDir, '--json', 'show', 'half']);
  assert.equal(shown.code, 3, 'the half-sent start was not carried out');
});

test('a client that sends a whole request and leaves does not crash the server', async () => {
  const c = await RawClient.connect(server.socket);
  await c.write(JSON.stringify({ v: 1, id: 1, method: 'start', params: { workflow_type: 'hello', workflow_id: 'left-early' } }) + '\n');
  c.close();
  // A request followed by a half-close still gets its reply.
  const c2 = await RawClient.connect(server.socket);
  await c2.write(JSON.stringify({ v: 1, id: 1, method: 'show', params: { workflow_id: 'left-early' } }) + '\n');
  c2.socket.end();
  assert.ok(await c2.waitClosed());
  assert.equal(c2.lines.length, 1);
  assert.ok(c2.lines[0].result || c2.lines[0].error?.code === 'not_found');
  assert.ok(alive(server.pid));
  const versions = await aionAsync(['--state-dir', stateDir, '--json', 'versions', 'hello']);
  assert.equal(versions.code, 0);
});
