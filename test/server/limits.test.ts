// Workflow code limits and the store's availability, through bin/aion (issue 11):
// - through `aion serve`: a looping activity, a memory-hungry activity and the same in workflow
//   code each fail only their own run with resource_exhausted (naming the limit) while
//   `aion versions` and `hello` runs keep answering; serve then restarts cleanly, recovers the
//   rest and does not crash-loop on the failed runs;
// - `aion serve --max-resident <n>`;
// - embedded: `aion versions` does not wait behind another process's running activity;
// - `serve --until-idle` reports a timer already due at recovery as fired, and does not count a
//   run that completed during shutdown as still running.
//
// Interfaces assumed from the new engine: `error.code: "resource_exhausted"` and
// `error.limit: "memory" | "time"` in `aion show --json` (and the same error in the history's
// closing WorkflowFailed event); AION_WORKFLOW_MEMORY_MB / AION_ACTIVITY_MEMORY_MB override the
// memory limits (64 MB here, so the hogs die fast); `aion serve --max-resident <n>`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { aion, aionAsync, BIN, ROOT, tempDir, type CliResult } from '../helpers/cli.js';
import { alive, pack, startServe, type Packed, type Served } from './support.js';

// Every aion process this file starts (serve, embedded commands) gets the test limits. The heap
// cap keeps a hog that reaches the engine's own heap (today's engine) from eating the machine.
process.env.AION_WORKFLOW_MEMORY_MB = '64';
process.env.AION_ACTIVITY_MEMORY_MB = '64';
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS ?? '', '--max-old-space-size=512'].join(' ').trim();

let work: { dir: string; cleanup: () => void };
const archives: Record<string, Packed> = {};
const servers: Served[] = [];
const children: ChildProcess[] = [];

before(() => {
  work = tempDir();
  for (const name of ['hello_v2', 'approval', 'sleeper', 'spin_activity', 'hog_activity', 'spin_workflow', 'hog_workflow', 'slow_activity']) {
    archives[name] = pack(name, work.dir);
  }
});
after(() => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  work.cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function serveOn(stateDir: string, args: string[] = []): Promise<Served> {
  const served = await startServe(stateDir, ['--json', ...args]);
  servers.push(served);
  return served;
}

async function timed(args: string[]): Promise<CliResult & { ms: number }> {
  const t0 = Date.now();
  const r = await aionAsync(args);
  return { ...r, ms: Date.now() - t0 };
}

/** An aion process whose stderr can be watched and whose exit time is recorded. */
function watched(args: string[]) {
  const env = { ...process.env };
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const listeners: (() => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const f of listeners) f();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    /** Resolves true once `text` appears on stderr, false on exit or after `ms`. */
    waitFor: (text: string, ms: number) =>
      new Promise<boolean>((resolve) => {
        if (stderr.includes(text)) return resolve(true);
        const timer = setTimeout(() => resolve(false), ms);
        listeners.push(() => {
          if (stderr.includes(text)) {
            clearTimeout(timer);
            resolve(true);
          }
        });
        void exited.then(() => {
          clearTimeout(timer);
          resolve(stderr.includes(text));
        });
      }),
  };
}

function show(s: string[], id: string): any {
  const r = aion([...s, 'show', id, '--json']);
  assert.equal(r.code, 0, `aion show ${id}: ${r.stderr}${r.stdout}`);
  return r.json;
}

/** Polls `aion show` until each run has left `running` (or the deadline); returns the last views. */
async function finalViews(s: string[], ids: string[], deadlineMs: number): Promise<Record<string, any>> {
  const deadline = Date.now() + deadlineMs;
  const views: Record<string, any> = {};
  for (;;) {
    for (const id of ids) {
      if (views[id] && views[id].status !== 'running') continue;
      const r = await aionAsync([...s, 'show', id, '--json']);
      views[id] = r.code === 0 ? r.json : { status: `(aion show exit ${r.code}: ${r.stderr.trim()})` };
    }
    if (ids.every((id) => views[id].status !== 'running') || Date.now() > deadline) return views;
    await sleep(250);
  }
}

function summaryOf(stdout: string): { recovered: number; timers_fired: number; still_running: number } {
  try {
    return JSON.parse(stdout);
  } catch {
    assert.fail(`aion serve --json printed no summary: ${JSON.stringify(stdout)}`);
  }
}

describe('misbehaving user code fails only its own run, through aion serve', () => {
  let state: string;
  let s: string[];
  let served: Served;
  // Each fails in its own way; `late` ones are parked on a signal first (resident), then fail.
  const bad = [
    { id: 'spin-act', type: 'spin_activity', input: null, limit: 'time' },
    { id: 'hog-act', type: 'hog_activity', input: null, limit: 'memory' },
    { id: 'spin-wf', type: 'spin_workflow', input: null, limit: 'time' },
    { id: 'hog-wf', type: 'hog_workflow', input: null, limit: 'memory' },
    { id: 'spin-wf-late', type: 'spin_workflow', input: { after_signal: true }, limit: 'time', late: true },
    { id: 'hog-wf-late', type: 'hog_workflow', input: { after_signal: true }, limit: 'memory', late: true },
  ];
  const helloIds: string[] = [];
  const failedHistories: Record<string, number> = {};

  before(async () => {
    state = path.join(work.dir, 'limits');
    s = ['--state-dir', state];
    for (const name of ['hello_v2', 'approval', 'spin_activity', 'hog_activity', 'spin_workflow', 'hog_workflow']) {
      const r = aion([...s, 'load', archives[name]!.path, '--json']);
      assert.equal(r.code, 0, r.stderr);
    }
    served = await serveOn(state);
  });

  test('versions and hello runs answer promptly while four kinds of bad run fail', { timeout: 120_000 }, async () => {
    const keeper = aion([...s, 'start', 'approval', '--id', 'keeper', '--input', '{"item":"k"}', '--json']);
    assert.equal(keeper.code, 0, keeper.stderr);
    assert.equal(keeper.json.status, 'running');
    for (const b of bad.filter((x) => x.late)) {
      const r = aion([...s, 'start', b.type, '--id', b.id, '--input', JSON.stringify(b.input), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.status, 'running', `${b.id} parks on its signal first`);
    }

    const badCalls = bad.map((b) =>
      b.late
        ? aionAsync([...s, 'signal', b.id, 'go', '--json'])
        : aionAsync([...s, 'start', b.type, '--id', b.id, '--input', JSON.stringify(b.input), '--json']),
    );
    await sleep(300);
    for (let round = 0; round < 3; round++) {
      const id = `hello-${round}`;
      helloIds.push(id);
      const [versions, hello] = await Promise.all([
        timed([...s, 'versions', '--json']),
        timed([...s, 'start', 'hello', '--id', id, '--input', `{"name":"r${round}"}`, '--json']),
      ]);
      assert.equal(versions.code, 0, `round ${round}: aion versions failed: ${versions.stderr}${versions.stdout}`);
      assert.equal(versions.json.versions.length, 6);
      assert.ok(versions.ms < 5_000, `round ${round}: aion versions took ${versions.ms} ms while bad runs were failing`);
      assert.equal(hello.code, 0, `round ${round}: aion start hello failed: ${hello.stderr}${hello.stdout}`);
      assert.equal(hello.json.status, 'completed');
      assert.ok(hello.ms < 5_000, `round ${round}: a hello run took ${hello.ms} ms while bad runs were failing`);
      await sleep(400);
    }
    const results = await Promise.all(badCalls);
    assert.ok(
      alive(served.pid) && served.child.exitCode === null && served.child.signalCode === null,
      `aion serve died while the bad runs ran (exit ${served.child.exitCode ?? served.child.signalCode}); its stderr ends: ${served.stderr().slice(-1500)}`,
    );
    results.forEach((r, i) => assert.equal(r.code, 0, `${bad[i]!.late ? 'signal' : 'start'} of ${bad[i]!.id}: exit ${r.code}: ${r.stderr}${r.stdout}`));
    for (const id of helloIds) assert.deepEqual(show(s, id).result, { greeting: `HELLO v2, r${id.slice(-1)}` });
  });

  test('each bad run ended failed with resource_exhausted naming its limit, recorded in its history; the others are unaffected', { timeout: 60_000 }, async () => {
    const views = await finalViews(s, bad.map((b) => b.id), 20_000);
    for (const b of bad) {
      const v = views[b.id]!;
      assert.equal(v.status, 'failed', `${b.id} (${b.type}) is ${v.status}`);
      assert.equal(v.error?.code, 'resource_exhausted', `${b.id} (${b.type}) failed with ${JSON.stringify(v.error)}`);
      assert.equal(v.error.limit, b.limit, `${b.id} names the ${b.limit} limit`);
      assert.match(v.error.message, b.limit === 'memory' ? /memory/i : /\btime/i, `${b.id}: the message names the limit`);
      const last = v.history.at(-1);
      assert.equal(last.type, 'WorkflowFailed', `${b.id}: the history ends with WorkflowFailed`);
      assert.deepEqual(last.error, v.error, `${b.id}: the history records the same error`);
      failedHistories[b.id] = v.history.length;
    }
    const keeper = show(s, 'keeper');
    assert.equal(keeper.status, 'running');
    assert.deepEqual(keeper.history.map((e: { type: string }) => e.type), ['WorkflowStarted']);
    const listed = aion([...s, 'runs', '--status', 'running', '--json']);
    assert.deepEqual(listed.json.runs.map((r: { workflow_id: string }) => r.workflow_id), ['keeper']);
  });

  test('serve restarted afterwards comes up, recovers the rest and does not crash-loop on the failed runs', { timeout: 60_000 }, async () => {
    const first = served;
    const stopped = await first.stop('SIGTERM');

    // The restart is checked even when the first serve did not survive: recovering what it
    // left must not bring the new one down (no crash loop).
    served = await serveOn(state);
    // Up for 2 s at least, and until no bad run is left running (a serve that recovers one
    // and dies of it would show here), at most 20 s.
    const upSince = Date.now();
    let statuses = '';
    for (;;) {
      await sleep(500);
      const listed = await aionAsync([...s, 'runs', '--json']);
      const runs: { workflow_id: string; status: string }[] = listed.json?.runs ?? [];
      statuses = runs.map((r) => `${r.workflow_id}: ${r.status}`).join(', ');
      const badRunning = runs.some((r) => r.status === 'running' && bad.some((b) => b.id === r.workflow_id));
      if (!alive(served.pid) || Date.now() - upSince > 20_000 || (Date.now() - upSince >= 2_000 && !badRunning)) break;
    }
    assert.ok(
      alive(served.pid) && served.child.exitCode === null,
      `the restarted serve exited (${served.child.exitCode ?? served.child.signalCode}) while recovering (runs: ${statuses}): ${served.stderr().slice(-1500)}`,
    );
    assert.deepEqual(stopped, { code: 0, signal: null }, `the first serve stopped with ${JSON.stringify(stopped)}: ${first.stderr().slice(-1500)}`);
    assert.equal(summaryOf(first.stdout()).still_running, 1, 'only keeper is still running');
    const versions = await timed([...s, 'versions', '--json']);
    assert.equal(versions.code, 0, versions.stderr);
    assert.ok(versions.ms < 5_000, `aion versions took ${versions.ms} ms after the restart`);
    for (const b of bad) {
      const v = show(s, b.id);
      assert.equal(v.status, 'failed');
      assert.equal(v.error.code, 'resource_exhausted');
      assert.equal(v.history.length, failedHistories[b.id], `${b.id} was not run again at recovery`);
    }
    const signalled = aion([...s, 'signal', 'keeper', 'approve', '--input', '"yes"', '--json']);
    assert.equal(signalled.code, 0, signalled.stderr);
    assert.equal(signalled.json.status, 'completed');
    assert.deepEqual(show(s, 'keeper').result, { request: { item: 'k' }, decision: 'yes', version: archives.approval!.version });
    const fresh = aion([...s, 'start', 'hello', '--id', 'after-restart', '--json']);
    assert.equal(fresh.json?.status, 'completed', fresh.stderr);

    const again = await served.stop('SIGTERM');
    assert.deepEqual(again, { code: 0, signal: null }, served.stderr().slice(-1500));
    const summary = summaryOf(served.stdout());
    assert.equal(summary.recovered, 1, 'only keeper was active at the restart: the failed runs are not recovered');
    assert.equal(summary.still_running, 0);
  });
});

describe('aion serve --max-resident', () => {
  test('a bad --max-resident is a usage error, and no server starts', () => {
    const state = path.join(work.dir, 'max-resident-bad');
    for (const bad of ['0', '2.5', 'many', '99999999999']) {
      const r = aion(['--state-dir', state, '--json', 'serve', '--max-resident', bad]);
      assert.equal(r.code, 2, `--max-resident ${bad}: ${r.stdout}${r.stderr}`);
      assert.equal(r.json.error.code, 'usage');
      assert.match(r.json.error.message, /--max-resident needs a whole number/);
      assert.doesNotMatch(r.stderr, /listening on/);
    }
  });

  test('with --max-resident 2, four parked runs are evicted and replayed as needed and each completes with its own result', { timeout: 60_000 }, async () => {
    const state = path.join(work.dir, 'max-resident');
    const s = ['--state-dir', state];
    assert.equal(aion([...s, 'load', archives.approval!.path]).code, 0);
    const served = await serveOn(state, ['--max-resident', '2']);
    for (let i = 0; i < 4; i++) {
      const r = aion([...s, 'start', 'approval', '--id', `r${i}`, '--input', JSON.stringify({ i }), '--json']);
      assert.equal(r.json?.status, 'running', r.stderr);
    }
    for (let i = 0; i < 4; i++) {
      const r = aion([...s, 'signal', `r${i}`, 'approve', '--input', JSON.stringify(`ok-${i}`), '--json']);
      assert.equal(r.json?.status, 'completed', r.stderr);
      assert.deepEqual(show(s, `r${i}`).result, { request: { i }, decision: `ok-${i}`, version: archives.approval!.version });
    }
    assert.deepEqual(await served.stop('SIGTERM'), { code: 0, signal: null });
  });
});

describe('the store is held only for transactions (embedded)', () => {
  test('while `aion start slow_activity` runs its 3 s activity, `aion versions` in another process answers at once', { timeout: 60_000 }, async () => {
    const state = path.join(work.dir, 'embedded-slow');
    const s = ['--state-dir', state];
    assert.equal(aion([...s, 'load', archives.slow_activity!.path]).code, 0);
    const slow = watched([...s, 'start', 'slow_activity', '--id', 'slow', '--input', '{"ms":3000}', '--json']);
    assert.ok(await slow.waitFor('SLOW-ACTIVITY-STARTED', 20_000), `the slow activity never started: ${slow.stderr()}`);
    const t0 = Date.now();
    const versions = await aionAsync([...s, 'versions', '--json']);
    const versionsAt = Date.now();
    const slowExit = await slow.exited;
    assert.equal(versions.code, 0, versions.stderr);
    assert.equal(versions.json.versions[0].workflow_type, 'slow_activity');
    assert.ok(
      versionsAt < slowExit.at,
      `aion versions returned ${versionsAt - slowExit.at} ms after the slow start's process exited: it waited behind the activity (${versions.stderr.trim()})`,
    );
    assert.ok(versionsAt - t0 < 2_000, `aion versions took ${versionsAt - t0} ms during a 3 s activity`);
    assert.equal(slowExit.code, 0, slow.stderr());
    assert.equal(JSON.parse(slow.stdout()).status, 'completed');
    assert.deepEqual(show(s, 'slow').result, { slept: 3000 });
  });
});

describe('serve --until-idle reports what happened (issue 11, item 6)', () => {
  test('a timer already due at recovery is counted in timers_fired', { timeout: 60_000 }, async () => {
    const state = path.join(work.dir, 'due-at-recovery');
    const s = ['--state-dir', state];
    assert.equal(aion([...s, 'load', archives.sleeper!.path]).code, 0);
    const started = aion([...s, 'start', 'sleeper', '--id', 'nap', '--json']);
    assert.equal(started.json.status, 'running', 'parked on its 1 s timer');
    await sleep(1_500);
    const served = aion([...s, 'serve', '--until-idle', '--json']);
    assert.equal(served.code, 0, served.stderr);
    assert.equal(served.json.recovered, 1);
    assert.equal(served.json.timers_fired, 1, `the timer was due at recovery and fired: ${served.stdout}`);
    assert.equal(served.json.still_running, 0);
    const nap = show(s, 'nap');
    assert.equal(nap.status, 'completed');
    assert.equal(nap.history.filter((e: { type: string }) => e.type === 'TimerFired').length, 1);
  });

  test('a run that completes while serve shuts down is not counted in still_running', { timeout: 60_000 }, async () => {
    const state = path.join(work.dir, 'done-at-shutdown');
    const s = ['--state-dir', state];
    assert.equal(aion([...s, 'load', archives.slow_activity!.path]).code, 0);
    // A run left in its activity by a killed process: recovered by serve, which runs it again.
    const first = watched([...s, 'start', 'slow_activity', '--id', 'late', '--input', '{"ms":3000}']);
    assert.ok(await first.waitFor('SLOW-ACTIVITY-STARTED', 20_000), `the slow activity never started: ${first.stderr()}`);
    first.child.kill('SIGKILL');
    await first.exited;
    assert.equal(show(s, 'late').status, 'running');

    const served = watched([...s, 'serve', '--until-idle', '--json']);
    assert.ok(await served.waitFor('SLOW-ACTIVITY-STARTED', 20_000), `serve never ran the recovered activity: ${served.stderr()}`);
    served.child.kill('SIGTERM');
    const exit = await served.exited;
    assert.equal(exit.code, 0, served.stderr());
    const late = show(s, 'late');
    assert.equal(late.status, 'completed', 'serve let the run in progress finish its step as it shut down');
    assert.deepEqual(late.result, { slept: 3000 });
    const summary = summaryOf(served.stdout());
    const running = aion([...s, 'runs', '--status', 'running', '--json']).json.runs.length;
    assert.equal(running, 0);
    assert.equal(summary.still_running, running, `still_running says ${summary.still_running}; the state directory has ${running} running run(s)`);
    assert.equal(summary.recovered, 1);
  });
});
