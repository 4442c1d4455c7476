// Runs in-process: they pin their version, survive restarts, and replay deterministically.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { K } from '../../src/store/keys.js';
import { putJSON } from '../../src/store/store.js';
import type { WorkflowEvent } from '../../src/runtime/history.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { InstrumentedKV, openEngine, storeFor } from './support.js';
import { packProject } from '../../src/package/index.js';

let work: { dir: string; cleanup: () => void };
let approval1: Packed;
let approval2: Packed;
let hello1: Packed;
let hello2: Packed;
let parent: Packed;
let sleeper: Packed;
let counter: Packed;
let order: Packed;
let steps: Packed;

/** A workflow project written for one test. */
async function packSource(name: string, source: string, activities: string[] = []): Promise<Packed> {
  const dir = path.join(work.dir, `project-${name}`);
  mkdirSync(path.join(dir, 'modules'), { recursive: true });
  writeFileSync(path.join(dir, 'workflow.json'), JSON.stringify({ entry_module: name, entry_function: 'run', timeout_seconds: 5, activities }));
  writeFileSync(path.join(dir, 'modules', `${name}.js`), source);
  const { path: file, pkg } = await packProject(dir, { out: path.join(work.dir, `${name}.aion`) });
  return { path: file, version: pkg.version, type: name };
}

before(async () => {
  work = tempDir();
  approval1 = await packFixture('approval', work.dir, 'approval-1.aion');
  approval2 = await packVariant('approval', work.dir, 'approval-2');
  hello1 = await packFixture('hello_v1', work.dir, 'hello-1.aion');
  hello2 = await packFixture('hello_v2', work.dir, 'hello-2.aion');
  parent = await packFixture('parent', work.dir);
  sleeper = await packFixture('sleeper', work.dir);
  counter = await packFixture('counter', work.dir);
  order = await packFixture('order', work.dir);
  steps = await packSource(
    'steps',
    `exports.run = async (ctx, input) => {
       const a = await ctx.activity('charge', { amount: 1 });
       const go = await ctx.signal('go');
       if (input && input.fail) await ctx.activity('explode', null);
       return { a, go, t: ctx.now(), r: ctx.random() };
     };
     exports.activities = {
       charge: async (input) => ({ charged: input.amount }),
       explode: async () => { throw new Error('card declined'); },
     };`,
    ['charge', 'explode'],
  );
});
after(() => work.cleanup());

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isAionError(error, code as never), `expected ${code}, got ${String(error)}`);
    return error as Error;
  }
  assert.fail(`expected ${code}`);
}

describe('a run keeps its version', () => {
  test('a run parked on a signal stays on v1 after v2 is loaded; new starts take v2', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'keep'));
    try {
      await engine.loadPackage({ path: approval1.path });
      const parked = await engine.runs.start('approval', { item: 'a' }, { workflowId: 'parked' });
      assert.deepEqual([parked.status, parked.version], ['running', approval1.version]);
      await engine.loadPackage({ path: approval2.path });
      const fresh = await engine.runs.start('approval', { item: 'b' }, { workflowId: 'fresh' });
      assert.equal(fresh.version, approval2.version);

      const refused = await expectCode(engine.unloadWorkflowVersion('approval', approval1.version), 'version_pinned');
      assert.match(refused.message, /parked/);

      const signalled = await engine.runs.signal('parked', 'approve', { ok: true });
      assert.equal(signalled.status, 'completed');
      const shown = await engine.runs.show('parked');
      assert.equal(shown.version, approval1.version);
      assert.deepEqual(shown.result, { request: { item: 'a' }, decision: { ok: true }, version: approval1.version });
      await engine.runs.signal('fresh', 'approve', 'yes');
      assert.equal((await engine.runs.show('fresh')).result && (await engine.runs.show('fresh') as { result: { version: string } }).result.version, approval2.version);

      assert.equal((await engine.unloadWorkflowVersion('approval', approval1.version)).unloaded, true);
    } finally {
      await engine.close();
    }
  });

  test('a child recorded with v1 starts on v1 after v2 is routed, and pins v1 until it does', async () => {
    const state = path.join(work.dir, 'child');
    const kv = await InstrumentedKV.open(state);
    let engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 1000, kv, onWarning: () => {} });
    await engine.loadPackage({ path: hello1.path });
    await engine.loadPackage({ path: parent.path });
    // Crash between recording the child and starting it: the child's start batch fails.
    kv.failWhen = (ops) => ops.some((op) => op.type === 'put' && op.key === K.run('p1/child-1'));
    const started = await engine.runs.start('parent', null, { workflowId: 'p1' });
    assert.equal(started.status, 'running');
    kv.failWhen = undefined;
    const history = (await engine.runs.show('p1')).history as WorkflowEvent[];
    const recorded = history.find((e) => e.type === 'ChildWorkflowStarted');
    assert.ok(recorded && recorded.type === 'ChildWorkflowStarted');
    assert.equal(recorded.package_version, hello1.version);

    await engine.loadPackage({ path: hello2.path });
    const refused = await expectCode(engine.unloadWorkflowVersion('hello', hello1.version), 'version_pinned');
    assert.match(refused.message, /recorded child p1\/child-1 \(recorded by p1\)/);
    const [v1info] = await engine.listWorkflowVersions('hello');
    assert.equal(v1info!.pins.recorded_children, 1);
    await engine.close();

    engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 1000, store: storeFor(state) });
    try {
      await engine.runs.recoverAll();
      const child = await engine.runs.show('p1/child-1');
      assert.equal(child.version, hello1.version, 'the child runs on its recorded version, not the routed one');
      assert.deepEqual(child.result, { greeting: 'hello, child' });
      const done = await engine.runs.show('p1');
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result, { child: { greeting: 'hello, child' } });
      assert.equal((await engine.unloadWorkflowVersion('hello', hello1.version)).unloaded, true);
    } finally {
      await engine.close();
    }
  });

  test('continue-as-new successors record their version and chain to completion', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'can'));
    try {
      await engine.loadPackage({ path: counter.path });
      const first = await engine.runs.start('counter', { n: 0 }, { workflowId: 'c' });
      assert.equal(first.status, 'continued_as_new');
      const last = await engine.runs.show('c');
      assert.equal(last.status, 'completed');
      assert.deepEqual(last.result, { n: 3 });
      assert.notEqual(last.run_id, first.run_id);
      const startedEvent = last.history[0] as Extract<WorkflowEvent, { type: 'WorkflowStarted' }>;
      assert.equal(startedEvent.package_version, counter.version);
      assert.ok(startedEvent.continued_from);
      assert.equal((await engine.listWorkflowVersions('counter'))[0]!.pins.recoverable, 0);
    } finally {
      await engine.close();
    }
  });
});

describe('run lifecycle', () => {
  test('activities, signals, deterministic replay and failure', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'steps'));
    try {
      await engine.loadPackage({ path: steps.path });
      await engine.runs.start('steps', null, { workflowId: 's1' });
      let shown = await engine.runs.show('s1');
      assert.deepEqual((shown.history as WorkflowEvent[]).map((e) => e.type), ['WorkflowStarted', 'ActivityScheduled', 'ActivityCompleted']);
      await engine.runs.signal('s1', 'go', 7);
      shown = await engine.runs.show('s1');
      assert.equal(shown.status, 'completed');
      const result = shown.result as { a: unknown; go: number; t: number; r: number };
      assert.deepEqual(result.a, { charged: 1 });
      assert.equal(result.go, 7);
      const signalAt = (shown.history as WorkflowEvent[]).find((e) => e.type === 'SignalReceived')!.at;
      assert.equal(result.t, signalAt, 'ctx.now() is the time of the event being replayed');

      await engine.runs.start('steps', { fail: true }, { workflowId: 's2' });
      await engine.runs.signal('s2', 'go', 1);
      const failed = await engine.runs.show('s2');
      assert.equal(failed.status, 'failed');
      assert.match(failed.error!.message, /card declined/);
      assert.equal((await engine.listWorkflowVersions('steps'))[0]!.pins.recoverable, 0, 'terminal runs pin nothing');
    } finally {
      await engine.close();
    }
  });

  test('non-determinism is detected and fails the run naming the step', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'nondet'));
    try {
      await engine.loadPackage({ path: steps.path });
      const run = await engine.runs.start('steps', null, { workflowId: 'nd' });
      // The recorded step now disagrees with what the code asks for.
      const key = K.event(run.run_id, 1);
      const scheduled = (await engine.store.getJSON<WorkflowEvent>(key))!;
      assert.equal(scheduled.type, 'ActivityScheduled');
      await engine.store.write([putJSON(key, { ...scheduled, name: 'refund' })], { sync: false });
      // A resident run never replays; one that is not (a new process, an eviction) is replayed
      // from its history, which is the determinism check.
      engine.live.clear();
      await engine.runs.signal('nd', 'go', null);
      const shown = await engine.runs.show('nd');
      assert.equal(shown.status, 'failed');
      assert.equal(shown.error!.name, 'NonDeterminismError');
      assert.match(shown.error!.message, /refund/);
      assert.match(shown.error!.message, /charge/);
    } finally {
      await engine.close();
    }
  });

  test('timers fire when due; terminate ends a run and frees its pins', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'timers'));
    try {
      await engine.loadPackage({ path: sleeper.path });
      await engine.loadPackage({ path: approval1.path });
      const slept = await engine.runs.start('sleeper', null, { workflowId: 'z' });
      assert.equal(slept.status, 'running');
      const next = await engine.runs.nextTimerAt();
      assert.ok(next !== undefined && next > Date.now() - 1000);
      assert.equal(await engine.runs.fireDueTimers(Date.now() - 60_000), 0, 'not due yet');
      assert.equal(await engine.runs.fireDueTimers(next! + 1), 1);
      const done = await engine.runs.show('z');
      assert.equal(done.status, 'completed');
      assert.equal(await engine.runs.nextTimerAt(), undefined);

      await engine.runs.start('approval', null, { workflowId: 't' });
      await expectCode(engine.runs.start('approval', null, { workflowId: 't' }), 'conflict');
      const terminated = await engine.runs.terminate('t', 'no longer needed');
      assert.equal(terminated.status, 'terminated');
      assert.equal((await engine.listWorkflowVersions('approval'))[0]!.pins.recoverable, 0);
      await expectCode(engine.runs.signal('t', 'approve', null), 'not_found');
      await expectCode(engine.runs.terminate('t', 'again'), 'not_found');
      await expectCode(engine.runs.show('nobody'), 'not_found');
      await expectCode(engine.runs.start('nope', null), 'not_found');
    } finally {
      await engine.close();
    }
  });

  test('a run whose version is missing fails its own recovery; other runs are unaffected', async () => {
    const state = path.join(work.dir, 'missing-version');
    let { engine } = await openEngine(state);
    await engine.loadPackage({ path: approval1.path });
    await engine.loadPackage({ path: steps.path });
    await engine.runs.start('approval', null, { workflowId: 'orphan' });
    await engine.runs.start('steps', null, { workflowId: 'healthy' });
    // Damage approval's package row: at restart its version is skipped.
    await engine.store.write([{ type: 'put', key: K.packageMeta('approval', approval1.version), value: new TextEncoder().encode('garbage') }], { sync: true });
    await engine.close();

    let warnings: string[];
    ({ engine, warnings } = await openEngine(state));
    try {
      await engine.runs.recoverAll();
      assert.ok(warnings.some((w) => w.includes('orphan') && w.includes(approval1.version.slice(0, 12))), warnings.join('\n'));
      assert.equal((await engine.runs.show('orphan')).status, 'running', 'its history is kept for when the version returns');
      await engine.runs.signal('healthy', 'go', 1);
      assert.equal((await engine.runs.show('healthy')).status, 'completed');
    } finally {
      await engine.close();
    }
  });

  test('runs advance independently: a slow activity delays no other start or signal', async () => {
    const crawler = await packSource(
      'crawler',
      `exports.run = async (ctx) => ({ got: await ctx.activity('crawl', null) });
       exports.activities = { crawl: async () => { await new Promise((r) => setTimeout(r, 1500)); return 'late'; } };`,
      ['crawl'],
    );
    const { engine } = await openEngine(path.join(work.dir, 'independent'));
    try {
      await engine.loadPackage({ path: crawler.path });
      await engine.loadPackage({ path: hello2.path });
      await engine.loadPackage({ path: approval1.path });
      engine.runs.residentAll = true;
      const slow = engine.runs.start('crawler', null, { workflowId: 'slow' });
      let slowDone = false;
      void slow.then(() => (slowDone = true));
      await new Promise((r) => setTimeout(r, 100));
      const quick = await engine.runs.start('hello', { name: 'q' }, { workflowId: 'quick' });
      assert.equal(quick.status, 'completed');
      await engine.runs.start('approval', null, { workflowId: 'waiting' });
      const signalled = await engine.runs.signal('waiting', 'approve', 1);
      assert.equal(signalled.status, 'completed');
      assert.equal(slowDone, false, 'the quick start and the signal finished while the slow activity ran');
      assert.equal((await engine.runs.show('slow')).status, 'running');
      assert.equal((await slow).status, 'completed');
      assert.deepEqual((await engine.runs.show('slow')).result, { got: 'late' });
    } finally {
      engine.live.clear();
      await engine.close();
    }
  });

  test('1,000 sequential starts of a trivial workflow complete', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'thousand'));
    try {
      await engine.loadPackage({ path: hello2.path });
      for (let i = 0; i < 1000; i++) {
        const r = await engine.runs.start('hello', { name: `n${i}` }, { workflowId: `w${i}` });
        assert.equal(r.status, 'completed');
      }
      const runs = await engine.runs.list({ status: 'completed' });
      assert.equal(runs.length, 1000);
    } finally {
      await engine.close();
    }
  });

  test('a generated workflow id that names an existing workflow is drawn again, never reused', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'generated-ids'));
    try {
      await engine.loadPackage({ path: hello2.path });
      const first = await engine.runs.start('hello', { name: 'a' }, { workflowId: 'hello-0000beef' });
      assert.equal(first.status, 'completed');
      const drawn = ['hello-0000beef', 'hello-0000cafe'];
      engine.runs.generateId = () => drawn.shift() ?? 'hello-ffffffff';
      const second = await engine.runs.start('hello', { name: 'b' });
      assert.equal(second.workflow_id, 'hello-0000cafe', 'the colliding id was drawn again');
      const kept = await engine.runs.show('hello-0000beef');
      assert.equal(kept.run_id, first.run_id, "the earlier workflow's record is untouched");
      assert.deepEqual(kept.result, { greeting: 'HELLO v2, a' });
      // An explicit --id may name a finished workflow: that starts its next run, as before.
      const again = await engine.runs.start('hello', { name: 'c' }, { workflowId: 'hello-0000beef' });
      assert.notEqual(again.run_id, first.run_id);
    } finally {
      await engine.close();
    }
  });

  test('activities with declared names only; an order completes with its recorded receipt', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'order'));
    try {
      await engine.loadPackage({ path: order.path });
      const r = await engine.runs.start('order', null, { workflowId: 'o' });
      assert.equal(r.status, 'completed');
      assert.deepEqual((await engine.runs.show('o')).result, { receipt: { charged: 42 } });
    } finally {
      await engine.close();
    }
  });
});
