// Attack 9: JSON input nested deeper than the engine can copy. `--input` (start, signal) and a
// request's `input` over the control socket are refused as `usage` (exit 2 / a usage reply),
// recording nothing; before, a depth of 4,500 crashed as `internal` (exit 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH } from '../../src/json.js';
import { aion, aionAsync, loadedState, stateDigest } from './support.js';
import { RawClient, startServe } from '../server/support.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

test('start --input nested 4,500 deep is a usage error and records nothing', async () => {
  const s = loadedState();
  try {
    const before = await stateDigest(s.stateDir);
    for (const input of [nested(4500), nestedObject(4500), nested(MAX_JSON_DEPTH + 1)]) {
      const r = aion(['--state-dir', s.stateDir, 'start', 'hello', '--input', input, '--json']);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.json.error.code, 'usage');
      assert.match(r.json.error.message, new RegExp(`--input nests deeper than ${MAX_JSON_DEPTH} levels`));
    }
    const text = aion(['--state-dir', s.stateDir, 'start', 'hello', '--input', nested(4500)]);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /^error: --input nests deeper/m);
    assert.equal(await stateDigest(s.stateDir), before, 'the state directory changed');
    // The bound itself is accepted: a run starts and completes.
    const ok = aion(['--state-dir', s.stateDir, 'start', 'hello', '--input', nested(MAX_JSON_DEPTH), '--json']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(ok.json.status, 'completed');
  } finally {
    s.cleanup();
  }
});

test('signal --input nested 4,500 deep is a usage error', async () => {
  const s = loadedState('approval');
  try {
    const started = aion(['--state-dir', s.stateDir, 'start', 'approval', '--id', 'order-1', '--json']);
    assert.equal(started.code, 0, started.stderr);
    const before = await stateDigest(s.stateDir);
    const r = aion(['--state-dir', s.stateDir, 'signal', 'order-1', 'approve', '--input', nested(4500), '--json']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.json.error.code, 'usage');
    assert.equal(await stateDigest(s.stateDir), before, 'the state directory changed');
  } finally {
    s.cleanup();
  }
});

test('over the control socket: deeply nested input gets a usage reply and the server keeps serving', async () => {
  const s = loadedState('approval');
  const server = await startServe(s.stateDir);
  try {
    const c = await RawClient.connect(server.socket);
    try {
      // 200,000 deep: 400 KB, within the 1 MiB line limit.
      const line = (id: number, method: string, params: string) => `{"v":1,"id":${id},"method":"${method}","params":${params}}\n`;
      await c.write(line(1, 'start', `{"workflow_type":"approval","workflow_id":"deep-1","input":${nested(200_000)}}`));
      await c.write(line(2, 'signal', `{"workflow_id":"deep-1","name":"approve","input":${nestedObject(5000)}}`));
      const replies = await c.waitLines(2, 20_000);
      const byId = new Map(replies.map((r) => [r.id, r]));
      assert.equal(byId.get(1)?.error?.code, 'usage', JSON.stringify(byId.get(1)).slice(0, 300));
      assert.equal(byId.get(2)?.error?.code, 'usage', JSON.stringify(byId.get(2)).slice(0, 300));
      const hello = await c.request('hello', {}, 3);
      assert.equal(hello.result.pid, server.pid);
    } finally {
      c.close();
    }
    const runs = await aionAsync(['--state-dir', s.stateDir, 'runs', '--json']);
    assert.equal(runs.code, 0, runs.stderr);
    assert.deepEqual(runs.json.runs, [], 'a run was recorded');
  } finally {
    const exit = await server.stop();
    assert.equal(exit.code, 0, server.stderr());
    s.cleanup();
  }
});
