// The issue's "done when": with `aion serve` running, a run parked on v1 keeps v1 while `aion
// load v2` from another process flips new starts to v2; `aion unload v1` is refused naming the
// LIVE run; the signalled run finishes on v1; then the unload succeeds. The same commands
// without a server give the same outputs, with the run reported as RECOVERABLE instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { aionAsync, tempDir, type CliResult } from '../helpers/cli.js';
import { pack, packVariant, startServe, type Packed } from './support.js';

interface Transcript {
  steps: { name: string; code: number; json: any }[];
}

async function scenario(stateDir: string, v1: Packed, v2: Packed, check: (name: string, r: CliResult) => void): Promise<Transcript> {
  const steps: Transcript['steps'] = [];
  const run = async (name: string, args: string[]) => {
    const r = await aionAsync(['--state-dir', stateDir, '--json', ...args]);
    check(name, r);
    steps.push({ name, code: r.code, json: r.json });
    return r;
  };
  const loadV1 = await run('load v1', ['load', v1.path]);
  assert.equal(loadV1.code, 0, loadV1.stdout + loadV1.stderr);
  assert.equal(loadV1.json.version, v1.version);

  const started = await run('start on v1', ['start', 'approval', '--id', 'req-1', '--input', '{"amount":5}']);
  assert.equal(started.code, 0, started.stderr);
  assert.equal(started.json.version, v1.version);
  assert.equal(started.json.status, 'running');

  const loadV2 = await run('load v2', ['load', v2.path]);
  assert.equal(loadV2.code, 0, loadV2.stderr);
  assert.equal(loadV2.json.route_changed, true);
  assert.equal(loadV2.json.previous, v1.version);

  const second = await run('start on v2', ['start', 'approval', '--id', 'req-2']);
  assert.equal(second.json.version, v2.version, 'new starts resolve v2 once load returned');

  await run('versions while pinned', ['versions', 'approval']);

  const refused = await run('unload v1 refused', ['unload', 'approval', v1.version.slice(0, 8)]);
  assert.equal(refused.code, 4, refused.stdout + refused.stderr);
  assert.equal(refused.json.error.code, 'version_pinned');
  assert.equal(refused.json.error.pinned_by.workflow_id, 'req-1');
  assert.equal(refused.json.error.holders_total, 1);

  const routed = await run('unload v2 refused (routed)', ['unload', 'approval', v2.version]);
  assert.equal(routed.code, 5);

  const signalled = await run('signal req-1', ['signal', 'req-1', 'approve', '--input', '"yes"']);
  assert.equal(signalled.code, 0, signalled.stderr);
  assert.equal(signalled.json.status, 'completed');

  const shown = await run('show req-1', ['show', 'req-1']);
  assert.equal(shown.json.status, 'completed');
  assert.equal(shown.json.version, v1.version, 'the run finished on the version it started on');
  assert.deepEqual(shown.json.result, { request: { amount: 5 }, decision: 'yes', version: v1.version });

  const unloaded = await run('unload v1', ['unload', 'approval', v1.version.slice(0, 8)]);
  assert.equal(unloaded.code, 0, unloaded.stdout + unloaded.stderr);
  assert.deepEqual(unloaded.json, { workflow_type: 'approval', version: v1.version, unloaded: true });

  const after = await run('versions after', ['versions', 'approval']);
  assert.deepEqual(after.json.versions.map((v: any) => v.version), [v2.version]);

  await run('unknown workflow', ['signal', 'nope', 'approve']);
  await run('runs', ['runs', '--status', 'running']);
  return { steps };
}

/** Replaces what differs between two runs of the scenario by nature (ids, clocks). */
function normalize(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value)
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
      .replace(/"\d{4}-\d\d-\d\dT[0-9:.]+Z"/g, '"<time>"')
      .replace(/"(at|fire_at)":\d+/g, '"$1":0'),
  );
}

test('done when: a live run pins v1 through a route flip, with and without aion serve alike', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-server-deploy-');
  try {
    const v1 = pack('approval', dir, 'approval-v1.aion');
    const v2 = packVariant('approval', dir, 'approval-v2');
    assert.notEqual(v1.version, v2.version);

    // With a server: every command goes to it; the parked run is a live run of the server.
    const served = path.join(dir, 'served');
    const server = await startServe(served);
    let withServer: Transcript;
    try {
      withServer = await scenario(served, v1, v2, (name, r) => {
        assert.ok(r.json !== undefined, `${name}: one JSON document on stdout, got ${r.stdout}`);
      });
      const refused = withServer.steps.find((s) => s.name === 'unload v1 refused')!.json.error;
      assert.equal(refused.pinned_by.kind, 'live_run');
      assert.deepEqual(refused.holders.map((h: any) => h.kind), ['live_run']);
      const pins = withServer.steps.find((s) => s.name === 'versions while pinned')!.json.versions;
      assert.deepEqual(pins.map((v: any) => v.pins.live), [1, 1]);
      assert.ok(/listening on /.test(server.stderr()));
    } finally {
      const exit = await server.stop('SIGTERM');
      assert.equal(exit.code, 0, server.stderr());
    }

    // Without a server: the same commands, the same results; the parked run is recoverable.
    const embedded = path.join(dir, 'embedded');
    const withoutServer = await scenario(embedded, v1, v2, () => {});
    const refused = withoutServer.steps.find((s) => s.name === 'unload v1 refused')!.json.error;
    assert.equal(refused.pinned_by.kind, 'recoverable_run');

    // Compare outputs step by step: exit codes and JSON, up to ids, clocks, and the kind of
    // pin (live in a server, recoverable without one) — which is the point of the server.
    assert.deepEqual(withServer.steps.map((s) => s.name), withoutServer.steps.map((s) => s.name));
    for (let i = 0; i < withServer.steps.length; i++) {
      const a = withServer.steps[i]!;
      const b = withoutServer.steps[i]!;
      assert.equal(a.code, b.code, `${a.name}: exit codes`);
      let left = normalize(a.json);
      let right = normalize(b.json);
      if (a.name === 'unload v1 refused') {
        left = JSON.parse(JSON.stringify(left).replaceAll('live_run', '<pin>').replaceAll('live run', '<pin>'));
        right = JSON.parse(JSON.stringify(right).replaceAll('recoverable_run', '<pin>').replaceAll('recoverable run', '<pin>'));
      }
      if (a.name.startsWith('versions')) {
        for (const v of [...(left as any).versions, ...(right as any).versions]) v.pins = { total: v.pins.live + v.pins.recoverable };
      }
      assert.deepEqual(left, right, `${a.name}: same output with and without aion serve`);
    }
  } finally {
    cleanup();
  }
});
