// A route flip under concurrent starts sent to a live `aion serve` is atomic: every start runs
// entirely on one version, and once any start has landed on the new version (or the load has
// returned), no start issued afterwards lands on the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { aionAsync, tempDir } from '../helpers/cli.js';
import { connectServer, type RemoteClient } from '../../src/client/remote.js';
import { pack, startServe } from './support.js';

interface Start {
  id: string;
  sentAt: number;
  repliedAt: number;
  version: string;
}

test('a route flip under concurrent starts through the server is atomic', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-flip-');
  const stateDir = path.join(dir, 'state');
  const v1 = pack('hello_v1', dir);
  const v2 = pack('hello_v2', dir);
  const server = await startServe(stateDir);
  const lanes: RemoteClient[] = [];
  try {
    assert.equal((await aionAsync(['--state-dir', stateDir, 'load', v1.path])).code, 0);
    // A logical clock over sends and replies orders "issued after" without trusting timers.
    let tick = 0;
    const starts: Start[] = [];
    let loadRepliedAt = Infinity;
    let loadDone = false;
    for (let i = 0; i < 6; i++) lanes.push((await connectServer(stateDir))!);
    assert.ok(lanes.every(Boolean));

    const runLane = async (client: RemoteClient, lane: number) => {
      let after = 0;
      for (let n = 0; after < 15 && n < 2000; n++) {
        const id = `flip-${lane}-${n}`;
        const sentAt = ++tick;
        const r = await client.start({ workflow_type: 'hello', input: { name: id }, workflow_id: id });
        starts.push({ id, sentAt, repliedAt: ++tick, version: r.version });
        assert.equal(r.status, 'completed');
        if (loadDone) after++;
      }
    };
    const flipping = (async () => {
      await new Promise((r) => setTimeout(r, 300));
      const loaded = await aionAsync(['--state-dir', stateDir, '--json', 'load', v2.path]);
      loadRepliedAt = ++tick;
      loadDone = true;
      assert.equal(loaded.code, 0, loaded.stdout + loaded.stderr);
      assert.equal(loaded.json.previous, v1.version);
    })();
    await Promise.all([...lanes.map(runLane), flipping]);

    const onV1 = starts.filter((s) => s.version === v1.version);
    const onV2 = starts.filter((s) => s.version === v2.version);
    assert.equal(onV1.length + onV2.length, starts.length, 'every start resolved one of the two versions');
    assert.ok(onV1.length > 0 && onV2.length > 0, `both versions were started (${onV1.length} on v1, ${onV2.length} on v2)`);
    // Once the load returned, every start resolves v2.
    for (const s of starts) if (s.sentAt > loadRepliedAt) assert.equal(s.version, v2.version, `${s.id} was sent after load returned`);
    // Once a start has landed on v2, no later start lands on v1.
    const firstV2Reply = Math.min(...onV2.map((s) => s.repliedAt));
    for (const s of onV1) assert.ok(s.sentAt < firstV2Reply, `${s.id} landed on v1 after a start had landed on v2`);

    // Every run is entirely on its version: recorded version, started event and result agree.
    const sample = [...onV1.slice(-10), ...onV2.slice(0, 10)];
    for (const s of sample) {
      const shown = await lanes[0]!.show({ workflow_id: s.id });
      assert.equal(shown.version, s.version);
      const started = shown.history[0] as { type: string; package_version: string };
      assert.equal(started.type, 'WorkflowStarted');
      assert.equal(started.package_version, s.version);
      const greeting = (shown.result as { greeting: string }).greeting;
      assert.equal(greeting, s.version === v1.version ? `hello, ${s.id}` : `HELLO v2, ${s.id}`);
    }
    const runs = await lanes[0]!.runs({ type: 'hello' });
    assert.equal(runs.length, starts.length);
  } finally {
    for (const l of lanes) await l.close();
    assert.equal((await server.stop()).code, 0, server.stderr());
    cleanup();
  }
});
