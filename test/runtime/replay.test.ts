import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Activation, WorkflowEvent } from '../../src/runtime/history.js';
import { replay, NonDeterminismError } from '../../src/runtime/executor.js';
import { drive, info, newVersion, record, setup, started, mods } from './support.js';

test('step by step: start schedules an activity; its completion completes the run', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx, input) => {
      const receipt = await ctx.activity('charge', { amount: input.amount });
      return { receipt, by: ctx.info.workflowId };
    };`,
  });
  const history: WorkflowEvent[] = [started({ amount: 5 })];
  const first = replay(registry, version, info(), history);
  assert.deepEqual(first, { status: 'blocked', commands: [{ type: 'ScheduleActivity', seq: 1, name: 'charge', input: { amount: 5 } }] });

  history.push(...record(first.commands, 1_100));
  assert.deepEqual(replay(registry, version, info(), history), { status: 'blocked', commands: [] }, 'recorded commands are not new');

  history.push({ type: 'ActivityCompleted', at: 1_200, seq: 1, result: 'r-1' });
  assert.deepEqual(replay(registry, version, info(), history), {
    status: 'completed',
    commands: [],
    result: { receipt: 'r-1', by: 'wf-1' },
  });
});

test('activities issued together get consecutive seqs; failures reject inside the workflow', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      const [a, b] = await Promise.all([ctx.activity('charge', 1), ctx.activity('ship', 2)]);
      try { await ctx.activity('refund', a + b); } catch (e) { return 'caught ' + e.name + ': ' + e.message + ' ' + (e instanceof Error); }
      return 'no failure';
    };`,
  });
  const history: WorkflowEvent[] = [started(null)];
  const first = replay(registry, version, info(), history);
  assert.deepEqual(first.commands.map((c) => [c.type, c.seq]), [['ScheduleActivity', 1], ['ScheduleActivity', 2]]);
  history.push(...record(first.commands, 1_010));
  history.push({ type: 'ActivityCompleted', at: 1_020, seq: 2, result: 20 });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'blocked', commands: [] });
  history.push({ type: 'ActivityCompleted', at: 1_030, seq: 1, result: 10 });
  const third = replay(registry, version, info(), history);
  assert.deepEqual(third, { status: 'blocked', commands: [{ type: 'ScheduleActivity', seq: 3, name: 'refund', input: 30 }] });
  history.push(...record(third.commands, 1_040), { type: 'ActivityFailed', at: 1_050, seq: 3, error: { message: 'card declined', name: 'PaymentError' } });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'completed', commands: [], result: 'caught PaymentError: card declined true' });
});

test('timers: StartTimer commands with seq; ctx.now follows the fired events', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      const times = [ctx.now()];
      await ctx.sleep(5);
      times.push(ctx.now(), Date.now());
      await ctx.sleep(0.5);
      times.push(new Date().getTime());
      return times;
    };`,
  });
  const history: WorkflowEvent[] = [started(null, 1_000)];
  const first = replay(registry, version, info(), history);
  assert.deepEqual(first, { status: 'blocked', commands: [{ type: 'StartTimer', seq: 1, seconds: 5 }] });
  history.push(...record(first.commands, 1_001), { type: 'TimerFired', at: 6_001, seq: 1 });
  const second = replay(registry, version, info(), history);
  assert.deepEqual(second, { status: 'blocked', commands: [{ type: 'StartTimer', seq: 2, seconds: 0.5 }] });
  history.push(...record(second.commands, 6_002), { type: 'TimerFired', at: 6_502, seq: 2 });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'completed', commands: [], result: [1_000, 6_001, 6_001, 6_502] });
});

test('ctx.sleep rejects invalid durations without issuing a command', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      const out = [];
      for (const s of [0, -1, 'x', NaN, Infinity]) { try { await ctx.sleep(s); } catch (e) { out.push(e.name); } }
      return out;
    };`,
  });
  assert.deepEqual(replay(registry, version, info(), [started(null)]), { status: 'completed', commands: [], result: ['RangeError', 'RangeError', 'RangeError', 'RangeError', 'RangeError'] });
});

test('signals: early signals are buffered FIFO per name; two waits for the same name', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      await ctx.activity('charge', null);
      const first = await ctx.signal('approve');
      const second = await ctx.signal('approve');
      const other = await ctx.signal('note');
      return [first, second, other];
    };`,
  });
  const history: WorkflowEvent[] = [started(null)];
  const first = replay(registry, version, info(), history);
  history.push(...record(first.commands, 1_001));
  // Both 'approve' signals and a 'note' arrive while the activity is still running.
  history.push(
    { type: 'SignalReceived', at: 1_002, name: 'approve', input: 'A1' },
    { type: 'SignalReceived', at: 1_003, name: 'note', input: { n: 1 } },
    { type: 'SignalReceived', at: 1_004, name: 'approve', input: 'A2' },
  );
  assert.deepEqual(replay(registry, version, info(), history), { status: 'blocked', commands: [] });
  history.push({ type: 'ActivityCompleted', at: 1_005, seq: 1, result: null });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'completed', commands: [], result: ['A1', 'A2', { n: 1 }] });
});

test('signals: two concurrent waiters for one name are served in order', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => Promise.all([ctx.signal('s'), ctx.signal('s')]);`,
  });
  const history: WorkflowEvent[] = [started(null), { type: 'SignalReceived', at: 1_001, name: 's', input: 1 }];
  assert.deepEqual(replay(registry, version, info(), history), { status: 'blocked', commands: [] });
  history.push({ type: 'SignalReceived', at: 1_002, name: 's', input: 2 });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'completed', commands: [], result: [1, 2] });
});

test('Promise.race between a signal and a timer replays in history order', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      const winner = await Promise.race([
        ctx.signal('cancel').then((v) => 'signal:' + v),
        ctx.sleep(60).then(() => 'timer'),
      ]);
      return { winner, at: ctx.now() };
    };`,
  });
  const base: WorkflowEvent[] = [started(null, 1_000)];
  const first = replay(registry, version, info(), base);
  assert.deepEqual(first, { status: 'blocked', commands: [{ type: 'StartTimer', seq: 1, seconds: 60 }] });
  const recorded = [...base, ...record(first.commands, 1_001)];
  const signalFirst: WorkflowEvent[] = [
    ...recorded,
    { type: 'SignalReceived', at: 2_000, name: 'cancel', input: 'stop' },
    { type: 'TimerFired', at: 61_001, seq: 1 },
  ];
  const timerFirst: WorkflowEvent[] = [
    ...recorded,
    { type: 'TimerFired', at: 61_001, seq: 1 },
    { type: 'SignalReceived', at: 61_002, name: 'cancel', input: 'stop' },
  ];
  assert.deepEqual(replay(registry, version, info(), signalFirst), { status: 'completed', commands: [], result: { winner: 'signal:stop', at: 2_000 } });
  assert.deepEqual(replay(registry, version, info(), timerFirst), { status: 'completed', commands: [], result: { winner: 'timer', at: 61_001 } });
});

test('children: StartChild commands carry seq and workflow id; completion and failure', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx, input) => {
      const a = await ctx.child('billing', { n: input }, { workflowId: 'bill-1' });
      let b;
      try { await ctx.child('shipping', a); } catch (e) { b = e.message; }
      return { a, b };
    };`,
  });
  const history: WorkflowEvent[] = [started(7)];
  const first = replay(registry, version, info(), history);
  assert.deepEqual(first, { status: 'blocked', commands: [{ type: 'StartChild', seq: 1, workflow_type: 'billing', input: { n: 7 }, workflow_id: 'bill-1' }] });
  history.push(...record(first.commands, 1_001), { type: 'ChildWorkflowCompleted', at: 1_002, seq: 1, result: 'paid' });
  const second = replay(registry, version, info(), history);
  assert.deepEqual(second, { status: 'blocked', commands: [{ type: 'StartChild', seq: 2, workflow_type: 'shipping', input: 'paid' }] });
  history.push(...record(second.commands, 1_003), { type: 'ChildWorkflowFailed', at: 1_004, seq: 2, error: { message: 'no truck' } });
  assert.deepEqual(replay(registry, version, info(), history), { status: 'completed', commands: [], result: { a: 'paid', b: 'no truck' } });
});

test('continueAsNew ends the run, even when workflow code catches it', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx, input) => {
      if (input.n >= 3) return 'done';
      try { ctx.continueAsNew({ n: input.n + 1 }); } catch (e) { /* swallowed on purpose */ }
      await ctx.activity('charge', 'after');
      return 'not reached';
    };`,
  });
  assert.deepEqual(replay(registry, version, info(), [started({ n: 1 })]), { status: 'continued_as_new', commands: [], input: { n: 2 } });
  assert.deepEqual(replay(registry, version, info(), [started({ n: 3 })]), { status: 'completed', commands: [], result: 'done' });
});

test('Date, Math.random and ctx.random are deterministic per run and identical across replays', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => {
      const sample = () => ({
        now: Date.now(), date: new Date().toISOString(), str: typeof Date(), given: new Date(0).toISOString(),
        parsed: Date.parse('2020-01-01T00:00:00Z'), isDate: new Date() instanceof Date,
        m: [Math.random(), Math.random()], r: [ctx.random(), ctx.random()], ctxNow: ctx.now(),
        intl: new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', dateStyle: 'short', timeStyle: 'medium' }).format(),
        parts: new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', second: 'numeric' }).formatToParts().map((p) => p.value).join(''),
        intlGiven: new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', year: 'numeric' }).format(new Date(0)),
      });
      const before = sample();
      await ctx.sleep(1);
      return { before, after: sample() };
    };`,
  });
  const history: WorkflowEvent[] = [
    started(null, 1_700_000_000_000),
    { type: 'TimerStarted', at: 1_700_000_000_001, seq: 1, seconds: 1, fire_at: 1_700_000_001_001 },
    { type: 'TimerFired', at: 1_700_000_001_500, seq: 1 },
  ];
  const one = replay(registry, version, info(), history);
  const two = replay(registry, version, info(), history);
  assert.equal(one.status, 'completed');
  assert.deepEqual(two, one);
  const result = (one as { result: any }).result;
  assert.equal(result.before.now, 1_700_000_000_000);
  assert.equal(result.before.date, new Date(1_700_000_000_000).toISOString());
  assert.equal(result.before.given, '1970-01-01T00:00:00.000Z');
  assert.equal(result.before.parsed, Date.UTC(2020, 0, 1));
  assert.equal(result.before.str, 'string');
  assert.equal(result.before.isDate, true);
  assert.equal(result.after.now, 1_700_000_001_500);
  assert.equal(result.after.ctxNow, 1_700_000_001_500);
  const utc = (at: number, o: Intl.DateTimeFormatOptions) => new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', ...o }).format(at);
  assert.equal(result.before.intl, utc(1_700_000_000_000, { dateStyle: 'short', timeStyle: 'medium' }), 'Intl formats the replay time, not the clock');
  assert.equal(result.after.parts, utc(1_700_000_001_500, { second: 'numeric' }));
  assert.equal(result.before.intlGiven, '1970');
  const numbers = [...result.before.m, ...result.before.r, ...result.after.m, ...result.after.r];
  assert.equal(new Set(numbers).size, numbers.length, 'one stream, no repeats');
  for (const n of numbers) assert.ok(n >= 0 && n < 1);

  const otherRun = replay(registry, version, info({ runId: 'run-2' }), history);
  assert.notDeepEqual((otherRun as { result: any }).result.before.m, result.before.m, 'seeded from the run id');
});

test('replaying the same history twice gives identical activations', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx, input) => {
      const rolls = [];
      for (let i = 0; i < 3; i++) rolls.push(await ctx.activity('charge', { i, r: Math.random() }));
      await ctx.sleep(1 + ctx.random());
      return rolls;
    };`,
  });
  const { activation, history } = drive(registry, version, info(), null, (_name, input) => input);
  assert.equal(activation.status, 'completed');
  const again = replay(registry, version, info(), history);
  assert.deepEqual(again, activation);
  const partial = history.slice(0, 4);
  assert.deepEqual(replay(registry, version, info(), partial), replay(registry, version, info(), partial));
});

function failedWith(activation: Activation, name: string, pattern: RegExp): void {
  assert.equal(activation.status, 'failed', JSON.stringify(activation));
  if (activation.status !== 'failed') return;
  assert.equal(activation.error.name, name);
  assert.match(activation.error.message, pattern);
}

test('non-determinism: changed code is detected and the step is named', () => {
  const v1 = setup({
    flow: `exports.main = async (ctx) => { await ctx.activity('charge', 1); await ctx.activity('charge', 2); await ctx.sleep(1); return 'ok'; };`,
  });
  const { activation, history } = drive(v1.registry, v1.version, info(), null, () => 'x');
  assert.equal(activation.status, 'completed');

  const changed = (source: string): Activation => {
    const version = newVersion();
    v1.registry.register(version, mods({ flow: source }));
    return replay(v1.registry, version, info(), history);
  };
  failedWith(
    changed(`exports.main = async (ctx) => { await ctx.activity('charge', 1); await ctx.activity('refund', 2); await ctx.sleep(1); return 'ok'; };`),
    'NonDeterminismError',
    /^non-determinism at activity #2: history has 'charge', code asked for 'refund'$/,
  );
  failedWith(
    changed(`exports.main = async (ctx) => { await ctx.activity('charge', 1); await ctx.activity('charge', 2); return 'ok'; };`),
    'NonDeterminismError',
    /^non-determinism at timer #1: history has a timer started, but the code never asked for it$/,
  );
  failedWith(
    changed(`exports.main = async (ctx) => { await ctx.activity('charge', 1); await ctx.sleep(1); return 'ok'; };`),
    'NonDeterminismError',
    /non-determinism at activity #2/,
  );
  // Input differences are not checked; the same calls replay fine.
  assert.equal(changed(`exports.main = async (ctx) => { await ctx.activity('charge', 'a'); await ctx.activity('charge', 'b'); await ctx.sleep(1); return 'ok'; };`).status, 'completed');
  assert.equal(new NonDeterminismError('activity #2', 'x').message, 'non-determinism at activity #2: x');
});

test('non-determinism on children: a different workflow type', () => {
  const { registry, version } = setup({ flow: `exports.main = async (ctx) => ctx.child('shipping', null);` });
  const history: WorkflowEvent[] = [
    started(null),
    { type: 'ChildWorkflowStarted', at: 1_001, seq: 1, child_workflow_id: 'c', workflow_type: 'billing', package_version: 'v', input: null },
  ];
  failedWith(replay(registry, version, info(), history), 'NonDeterminismError', /^non-determinism at child workflow #1: history has workflow type 'billing', code asked for 'shipping'$/);
});

test('an infinite loop inside the workflow fails the activation within the bound', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => { const n = await ctx.activity('charge', null); if (n === 1) for (;;) {} return n; };`,
  });
  const history: WorkflowEvent[] = [
    started(null),
    { type: 'ActivityScheduled', at: 1_001, seq: 1, name: 'charge', input: null },
    { type: 'ActivityCompleted', at: 1_002, seq: 1, result: 1 },
  ];
  const t0 = Date.now();
  const activation = replay(registry, version, info(), history, { timeoutMs: 100 });
  assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
  failedWith(activation, 'ActivationTimeout', /^workflow activation exceeded 100 ms \(infinite loop\?\) while applying ActivityCompleted #1$/);
});

test('an endless microtask chain inside the workflow fails the activation within the bound', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx) => { const spin = async () => { await null; return spin(); }; return spin(); };`,
  });
  const t0 = Date.now();
  const activation = replay(registry, version, info(), [started(null)], { timeoutMs: 100 });
  assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
  failedWith(activation, 'ActivationTimeout', /^workflow activation exceeded 100 ms \(infinite loop\?\) while starting the workflow$/);
});

test('a workflow exception fails the run with its message and name', () => {
  const { registry, version } = setup({
    flow: `class OrderError extends Error { constructor(m) { super(m); this.name = 'OrderError'; } }
      exports.main = async (ctx, input) => { if (input.bad) throw new OrderError('order ' + input.id + ' is bad'); return 1; };`,
  });
  failedWith(replay(registry, version, info(), [started({ bad: true, id: 9 })]), 'OrderError', /^order 9 is bad$/);
  const sync = setup({ flow: `exports.main = (ctx) => { throw 'plain string'; };` });
  failedWith(replay(sync.registry, sync.version, info(), [started(null)]), 'Error', /plain string/);
});

test('an undeclared activity, a missing entry function and a non-JSON result fail the run', () => {
  const undeclared = setup({ flow: `exports.main = async (ctx) => ctx.activity('launch_rockets', 1);` });
  failedWith(replay(undeclared.registry, undeclared.version, info({ activities: ['charge'] }), [started(null)]), 'Error', /activity 'launch_rockets' is not declared in the manifest \(declared: charge\)/);
  const missing = setup({ flow: `exports.other = async () => 1;` });
  failedWith(replay(missing.registry, missing.version, info(), [started(null)]), 'TypeError', /entry function 'main' is not exported by module 'flow'/);
  const bigint = setup({ flow: `exports.main = async () => 10n;` });
  failedWith(replay(bigint.registry, bigint.version, info(), [started(null)]), 'TypeError', /result is not JSON-serializable/);
  const undef = setup({ flow: `exports.main = async () => undefined;` });
  assert.deepEqual(replay(undef.registry, undef.version, info(), [started(null)]), { status: 'completed', commands: [], result: null });
});

test('the sandbox has no Node APIs; values are cloned into the workflow realm; ctx.info is frozen', () => {
  const { registry, version } = setup({
    flow: `exports.main = async (ctx, input) => {
      input.mutated = true;
      let frozen = false;
      ctx.info.runId = 'x'; // sloppy-mode module code: ignored, not thrown
      try { (() => { 'use strict'; ctx.info.runId = 'x'; })(); } catch (e) { frozen = e instanceof TypeError && ctx.info.runId === 'run-1'; }
      console.log('no output during replay');
      return {
        globals: ['process', 'require', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'fetch', 'module', 'global', 'WeakRef'].map((g) => typeof globalThis[g]),
        plain: input instanceof Object && Array.isArray(input.list),
        info: ctx.info, frozen: frozen && Object.isFrozen(ctx) && Object.isFrozen(ctx.info),
      };
    };`,
  });
  const input = { list: [1, 2] };
  const history = [started(input)];
  const activation = replay(registry, version, info(), history);
  assert.deepEqual(activation, {
    status: 'completed',
    commands: [],
    result: {
      globals: Array(10).fill('undefined'),
      plain: true,
      info: { workflowId: 'wf-1', runId: 'run-1', workflowType: 'flow', version },
      frozen: true,
    },
  });
  assert.deepEqual(input, { list: [1, 2] }, 'host value untouched');
});

test('a history ending in a terminal event is replayed up to it', () => {
  const { registry, version } = setup({ flow: `exports.main = async (ctx) => ctx.signal('go');` });
  const history: WorkflowEvent[] = [
    started(null),
    { type: 'WorkflowTerminated', at: 1_001, reason: 'operator' },
    { type: 'SignalReceived', at: 1_002, name: 'go', input: 1 },
  ];
  assert.deepEqual(replay(registry, version, info(), history), { status: 'blocked', commands: [] });
  assert.throws(() => replay(registry, version, info(), []), /does not start with WorkflowStarted/);
});

test('a resolution for a call the code never made is non-determinism', () => {
  const { registry, version } = setup({ flow: `exports.main = async (ctx) => ctx.signal('go');` });
  const history: WorkflowEvent[] = [
    started(null),
    { type: 'ActivityScheduled', at: 1_001, seq: 1, name: 'charge', input: null },
    { type: 'ActivityCompleted', at: 1_002, seq: 1, result: null },
  ];
  failedWith(replay(registry, version, info(), history), 'NonDeterminismError', /^non-determinism at activity #1: history has its ActivityCompleted, but the code has not asked for it$/);
});

test('a rejection workflow code leaves unhandled does not kill the process; host rejections still do', () => {
  // In a child process: the test runner installs its own unhandledRejection listener.
  const runtime = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/runtime/index.js')).href;
  const script = (hostRejection: boolean) => `
    import { ModuleRegistry, replay } from ${JSON.stringify(runtime)};
    const registry = new ModuleRegistry();
    registry.register('v', new Map([['flow', Buffer.from("exports.main = async (ctx) => { ctx.activity('nope'); Promise.reject(new Error('floating')); return 1; };")]]));
    const run = { workflowId: 'w', runId: 'r', workflowType: 'flow', entryModule: 'flow', entryFunction: 'main', activities: [] };
    const activation = replay(registry, 'v', run, [{ type: 'WorkflowStarted', at: 1, workflow_id: 'w', run_id: 'r', workflow_type: 'flow', package_version: 'v', input: null }]);
    setTimeout(() => {
      console.log(activation.status);
      if (${hostRejection}) Promise.reject(new Error('host bug'));
    }, 20);`;
  const sandboxOnly = spawnSync(process.execPath, ['--input-type=module', '-e', script(false)], { encoding: 'utf8' });
  assert.equal(sandboxOnly.status, 0, sandboxOnly.stderr);
  assert.equal(sandboxOnly.stdout.trim(), 'completed');
  const withHost = spawnSync(process.execPath, ['--input-type=module', '-e', script(true)], { encoding: 'utf8' });
  assert.equal(withHost.status, 1);
  assert.match(withHost.stderr, /host bug/);
});
