// The rollout commands end to end through bin/aion, embedded and through `aion serve`, with
// the same results and exit codes: stage (load --no-route), ramp, status, promote (route),
// wait (timeout with holders, then success), unload --wait, prune, history with AION_ACTOR.
// And a client whose aion serve goes away mid-request exits 13 (unavailable).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { aion, tempDir, type CliResult } from '../helpers/cli.js';
import { pack, packVariant, RawClient, startServe, type Packed } from './support.js';

let work: { dir: string; cleanup: () => void };
let a1: Packed;
let a2: Packed;

before(() => {
  work = tempDir('aion-rollout-e2e-');
  a1 = pack('approval', work.dir, 'approval.aion');
  a2 = packVariant('approval', work.dir, 'approval-v2');
});
after(() => work.cleanup());

/** The parts of a result that must be the same embedded and through serve. */
function stable(r: CliResult): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (['loaded_at', 'at', 'pid', 'run_id', 'started_at', 'updated_at', 'message'].includes(k) && typeof x !== 'object') continue;
        // a run pins as live under serve and as recoverable embedded: compare the total
        if (k === 'pins' && x && typeof x === 'object') {
          const p = x as Record<string, number>;
          out.pins = { runs: p.live! + p.recoverable!, recorded_children: p.recorded_children };
          continue;
        }
        if (k === 'kind' && (x === 'live_run' || x === 'recoverable_run')) {
          out.kind = 'run';
          continue;
        }
        out[k] = strip(x);
      }
      return out;
    }
    return v;
  };
  return { code: r.code, json: strip(r.json) };
}

/** The whole rollout; returns every step's stable result. */
function rollout(stateDir: string): Record<string, unknown> {
  const env = { AION_ACTOR: 'deploy-bot' };
  const x = (...args: string[]) => aion(['--state-dir', stateDir, ...args, '--json'], { env });
  const steps: Record<string, CliResult> = {};
  steps.load1 = x('load', a1.path);
  steps.start = x('start', 'approval', '--id', 'order-42');
  steps.stage = x('load', a2.path, '--no-route');
  assert.equal(steps.stage.json.routed, false, steps.stage.stdout);
  assert.equal(steps.stage.json.route_changed, false);
  steps.ramp = x('ramp', 'approval', a2.version.slice(0, 8), '12.5');
  assert.equal(steps.ramp.code, 0, steps.ramp.stdout + steps.ramp.stderr);
  assert.deepEqual(steps.ramp.json, { workflow_type: 'approval', routed: a1.version, ramping: { version: a2.version, percent: 12.5 }, previous_ramp: null });
  steps.status = x('status', 'approval');
  assert.deepEqual(steps.status.json.types[0].ramping, { version: a2.version, percent: 12.5, label: null });
  steps.versions = x('versions', 'approval');
  assert.deepEqual(steps.versions.json.versions.map((v: any) => [v.state, v.ramp_percent, v.rollback_target]), [['routed', null, false], ['ramping', 12.5, false]]);
  steps.unloadRamping = x('unload', 'approval', a2.version);
  assert.equal(steps.unloadRamping.code, 5);
  assert.equal(steps.unloadRamping.json.error.role, 'ramping');
  steps.promote = x('route', 'approval', a2.version, '-m', 'promote');
  assert.equal(steps.promote.code, 0);
  steps.versions2 = x('versions', 'approval');
  assert.deepEqual(steps.versions2.json.versions.map((v: any) => [v.state, v.ramp_percent, v.rollback_target]), [['draining', null, true], ['routed', null, false]]);
  steps.waitTimeout = x('wait', 'approval', a1.version.slice(0, 8), '--drained', '--timeout', '300ms', '--interval', '100ms');
  assert.equal(steps.waitTimeout.code, 12, steps.waitTimeout.stdout);
  assert.equal(steps.waitTimeout.json.error.code, 'timeout');
  assert.equal(steps.waitTimeout.json.error.state.state, 'draining');
  assert.deepEqual(steps.waitTimeout.json.error.holders.map((h: any) => h.workflow_id), ['order-42']);
  steps.unloadWait = x('unload', 'approval', a1.version, '--wait', '200ms');
  assert.equal(steps.unloadWait.code, 12, steps.unloadWait.stdout);
  assert.equal(steps.unloadWait.json.error.holders_total, 1);
  steps.signal = x('signal', 'order-42', 'approve', '--input', '{"by":"ada"}');
  assert.equal(steps.signal.code, 0, steps.signal.stderr);
  steps.waitDrained = x('wait', 'approval', a1.version.slice(0, 8), '--drained', '--timeout', '20s', '--interval', '100ms');
  assert.equal(steps.waitDrained.code, 0, steps.waitDrained.stdout);
  assert.equal(steps.waitDrained.json.state, 'drained');
  steps.prune = x('prune', '--keep', '0');
  assert.deepEqual(steps.prune.json, { unloaded: [], kept: [{ workflow_type: 'approval', version: a1.version, reason: 'rollback_target' }, { workflow_type: 'approval', version: a2.version, reason: 'routed' }] });
  steps.unload = x('unload', 'approval', a1.version, '--wait', '5s');
  assert.equal(steps.unload.code, 0, steps.unload.stdout);
  steps.waitUnloaded = x('wait', 'approval', a1.version.slice(0, 8), '--unloaded', '--timeout', '1s');
  assert.equal(steps.waitUnloaded.code, 0);
  assert.equal(steps.waitUnloaded.json.unloaded, true);
  steps.history = x('history', 'approval');
  assert.deepEqual(
    steps.history.json.history.map((r: any) => [r.operation, r.user, r.routed, r.ramp?.percent]),
    [['load', 'deploy-bot', undefined, undefined], ['load', 'deploy-bot', false, undefined], ['ramp', 'deploy-bot', undefined, 12.5], ['route', 'deploy-bot', undefined, undefined], ['unload', 'deploy-bot', undefined, undefined]],
  );
  return Object.fromEntries(Object.entries(steps).map(([k, r]) => [k, stable(r)]));
}

describe('rollout through bin/aion', () => {
  test('embedded and through aion serve give the same results and exit codes', async () => {
    const embedded = rollout(path.join(work.dir, 'embedded'));
    const served = path.join(work.dir, 'served');
    mkdirSync(served);
    const server = await startServe(served);
    let remote: Record<string, unknown>;
    try {
      remote = rollout(served);
      // The table's param checks hold on the wire: unknown or mistyped params change nothing.
      const raw = await RawClient.connect(server.socket);
      try {
        const typo = await raw.request('unload', { workflow_type: 'approval', version: a2.version, dryrun: true });
        assert.equal(typo.error.code, 'usage');
        assert.match(typo.error.message, /unknown parameter 'dryrun' for method 'unload'/);
        const typed = await raw.request('ramp', { workflow_type: 'approval', version: a2.version, percent: '10' });
        assert.match(typed.error.message, /parameter 'percent' must be a number/);
        const prune = await raw.request('prune', { keep: -1 });
        assert.equal(prune.error.code, 'usage');
        const status = await raw.request('status', {});
        assert.equal(status.result[0].routed, a2.version, 'the server still serves, and nothing changed');
      } finally {
        raw.close();
      }
    } finally {
      assert.equal((await server.stop()).code, 0, server.stderr());
    }
    assert.deepEqual(remote, embedded);
  });
});

describe('a server that goes away mid-request', () => {
  test('exits 13 (unavailable), not 1', async () => {
    const stateDir = path.join(work.dir, 'vanishing');
    mkdirSync(stateDir);
    // An "aion serve" of this directory that answers hello, then reads one request and dies
    // without replying.
    const socketPath = path.join(work.dir, 'fake.sock');
    const st = statSync(stateDir, { bigint: true });
    const server = net.createServer((socket) => {
      let buffer = '';
      socket.on('data', (chunk) => {
        buffer += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const request = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if (request.method !== 'hello') return void socket.destroy();
          socket.write(JSON.stringify({ v: 1, id: request.id, result: { server: 'aion serve', v: 1, pid: process.pid, state_dir: stateDir, state_dir_id: `${st.dev}:${st.ino}` } }) + '\n');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    writeFileSync(path.join(stateDir, 'holder.json'), JSON.stringify({ pid: process.pid, command: 'aion serve', since: new Date().toISOString(), socket: socketPath }));
    try {
      const { aionAsync } = await import('../helpers/cli.js');
      const r = await aionAsync(['--state-dir', stateDir, 'route', 'approval', 'abcd', '--json']);
      assert.equal(r.code, 13, r.stdout + r.stderr);
      assert.equal(r.json.error.code, 'unavailable');
      assert.match(r.json.error.message, /went away before it replied/);
      assert.match(r.json.error.message, /may or may not have taken effect/, 'a mutation: the outcome is unknown');
      assert.match(r.stderr + r.stdout, /unavailable/);
      const text = await aionAsync(['--state-dir', stateDir, 'versions']);
      assert.equal(text.code, 13);
      assert.match(text.stderr, /nothing was changed \(versions only reads\)/);
      const mutation = await aionAsync(['--state-dir', stateDir, 'unload', 'approval', 'abcd']);
      assert.equal(mutation.code, 13);
      assert.match(mutation.stderr, /hint: check the outcome with 'aion versions', 'aion history' or 'aion show'/);
    } finally {
      server.close();
    }
  });
});
