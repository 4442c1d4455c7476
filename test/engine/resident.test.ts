// The run engine of issue 11, in-process: resident runs (an activation applies only the new
// events), globals isolated between runs that share a version, a 10,000-step run, and the three
// review findings on the run path (a child's recorded version vs a concurrent unload, a start on
// a version whose stored archive is gone, and — in test/server/limits.test.ts — serve's summary).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { Engine } from '../../src/engine/engine.js';
import { K, range } from '../../src/store/keys.js';

import type { BatchOp, KV, RangeOptions } from '../../src/store/kv.js';
import type { WorkflowEvent } from '../../src/runtime/history.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, storedArchive, type Packed } from '../helpers/packages.js';
import { InstrumentedKV, openEngine, openTestKV, TEST_BACKEND } from './support.js';

let work: { dir: string; cleanup: () => void };
let stepper: Packed;
let globals: Packed;
let hello1: Packed;
let hello2: Packed;
let parent: Packed;
let approval: Packed;

before(async () => {
  work = tempDir();
  stepper = await packFixture('stepper', work.dir);
  globals = await packFixture('globals', work.dir);
  hello1 = await packFixture('hello_v1', work.dir, 'hello-1.aion');
  hello2 = await packFixture('hello_v2', work.dir, 'hello-2.aion');
  parent = await packFixture('parent', work.dir);
  approval = await packFixture('approval', work.dir);
});
after(() => work.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps runs live in this engine between activations, as `aion serve` does. */
function keepResident(engine: Engine): void {
  (engine.runs as unknown as { residentAll: boolean }).residentAll = true;
}

/** Every key of the state directory in a range (through the engine's store). */
async function keysIn(engine: Engine, r: RangeOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const k of engine.store.keys(r)) out.push(k);
  return out;
}

/**
 * Wraps a KV: the batches `slowWhen` accepts are held for `delayMs` before they are written
 * (`entered` resolves as the first one arrives); and after `failAfter` (ms since the epoch)
 * every batch fails, so a run that blows its time budget stops instead of running on for hours.
 */
class SlowKV implements KV {
  slowWhen: ((ops: BatchOp[]) => boolean) | undefined;
  delayMs = 0;
  failAfter = Infinity;
  private enter!: () => void;
  readonly entered = new Promise<void>((resolve) => (this.enter = resolve));

  constructor(private readonly inner: KV) {}
  get shared(): boolean | undefined {
    return this.inner.shared;
  }

  static async open(stateDir: string): Promise<SlowKV> {
    return new SlowKV(await openTestKV(stateDir));
  }

  get(key: string) {
    return this.inner.get(key);
  }
  getMany(keys: string[]) {
    return this.inner.getMany(keys);
  }
  async batch(ops: BatchOp[], options: { sync: boolean }) {
    if (Date.now() > this.failAfter) throw new Error('injected write failure: the test ran out of time');
    if (this.slowWhen?.(ops)) {
      this.enter();
      await sleep(this.delayMs);
    }
    return this.inner.batch(ops, options);
  }
  entries(r: RangeOptions) {
    return this.inner.entries(r);
  }
  keys(r: RangeOptions) {
    return this.inner.keys(r);
  }
  close() {
    return this.inner.close();
  }
}

describe('resident runs', () => {
  test('a signal to a resident run applies only the new events: no replay of its 200-event history', async () => {
    const state = path.join(work.dir, 'resident-scan');
    const kv = await InstrumentedKV.open(state);
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 5_000, kv, onWarning: () => {} });
    try {
      keepResident(engine);
      await engine.loadPackage({ path: stepper.path });
      const parked = await engine.runs.start('stepper', { n: 100, wait_signal: true }, { workflowId: 'long-parked' });
      assert.equal(parked.status, 'running', 'parked on ctx.signal after 100 steps');
      const events = (await engine.runs.show('long-parked')).history.length;
      assert.equal(events, 201, 'WorkflowStarted + 100 × (ActivityScheduled, ActivityCompleted)');

      kv.scanned = 0;
      const done = await engine.runs.signal('long-parked', 'go', 'now');
      const scanned = kv.scanned;
      assert.equal(done.status, 'completed');
      assert.ok(
        scanned < 20,
        `delivering one signal to a resident run read ${scanned} entries by range scans; a run of ${events} events must not be replayed from history to apply one new event`,
      );
      const shown = await engine.runs.show('long-parked');
      assert.deepEqual(shown.result, { steps: 100, last: { i: 99 }, go: 'now' });
    } finally {
      await engine.close();
    }
  });

  test('two runs of one version that write globals never see each other’s', async () => {
    const { engine } = await openEngine(path.join(work.dir, 'globals'));
    try {
      keepResident(engine);
      await engine.loadPackage({ path: globals.path });
      const a = await engine.runs.start('globals', 'mark-A', { workflowId: 'g-a' });
      const b = await engine.runs.start('globals', { mark: 'B' }, { workflowId: 'g-b' });
      assert.deepEqual([a.status, b.status], ['running', 'running'], 'both parked on ctx.signal("go")');
      assert.equal(a.version, b.version, 'the same version, so a context could be shared');

      // Signalled in the opposite order of their starts: B wrote its mark last.
      assert.equal((await engine.runs.signal('g-b', 'go', null)).status, 'completed');
      assert.equal((await engine.runs.signal('g-a', 'go', null)).status, 'completed');
      assert.deepEqual((await engine.runs.show('g-a')).result, { mark: 'mark-A', before: null });
      assert.deepEqual((await engine.runs.show('g-b')).result, { mark: { mark: 'B' }, before: null });

      // A third run, after both wrote and finished, starts with a clean global object too.
      await engine.runs.start('globals', 3, { workflowId: 'g-c' });
      await engine.runs.signal('g-c', 'go', null);
      assert.deepEqual((await engine.runs.show('g-c')).result, { mark: 3, before: null });
    } finally {
      await engine.close();
    }
  });

  // Bounded in size, not in time: the budget below only stops a hopeless run (today's engine
  // replays the whole history at every step, which makes 10,000 steps take hours).
  const BUDGET_MS = 60_000;
  test('a 10,000-step run completes', { timeout: BUDGET_MS + 60_000 }, async () => {
    const state = path.join(work.dir, 'ten-thousand');
    const kv = await SlowKV.open(state);
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 5_000, kv, onWarning: () => {} });
    try {
      await engine.loadPackage({ path: stepper.path });
      const t0 = Date.now();
      kv.failAfter = t0 + BUDGET_MS;
      const out = await engine.runs.start('stepper', { n: 10_000 }, { workflowId: 'ten-thousand' });
      const ms = Date.now() - t0;
      const shown = await engine.runs.show('ten-thousand');
      assert.equal(
        out.status,
        'completed',
        `after ${ms} ms the run is ${shown.status} with ${shown.history.length} events (${Math.floor((shown.history.length - 1) / 2)} of 10,000 steps)`,
      );
      assert.deepEqual(shown.result, { steps: 10_000, last: { i: 9_999 } });
      const history = shown.history as WorkflowEvent[];
      assert.equal(history.length, 1 + 2 * 10_000 + 1);
      assert.equal(history.filter((e) => e.type === 'ActivityCompleted').length, 10_000);
      assert.equal(history.at(-1)!.type, 'WorkflowCompleted');
    } finally {
      kv.failAfter = Infinity;
      await engine.close();
    }
  });
});

describe('a start begins its first activation before it is written', () => {
  /** The workflow thread's resident runs once no activation is in flight (and drops are done). */
  async function residentSettled(engine: Engine): Promise<number> {
    const pool = await (engine as unknown as { pool(): Promise<{ residentCount: number; inFlight: number }> }).pool();
    for (let i = 0; i < 500 && pool.inFlight > 0; i++) await sleep(5);
    await sleep(20); // a discard drops the slot once the activation's promise has settled
    return pool.residentCount;
  }

  test('a start refused as a conflict, or whose write fails, leaves no run resident; the next start runs', async () => {
    const state = path.join(work.dir, 'early-discard');
    const kv = await InstrumentedKV.open(state);
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 5_000, kv, onWarning: () => {} });
    try {
      keepResident(engine);
      await engine.loadPackage({ path: approval.path });
      assert.equal((await engine.runs.start('approval', 1, { workflowId: 'a1' })).status, 'running');
      assert.equal(await residentSettled(engine), 1, 'a1 is parked on its signal, resident');

      // The second start of a1 is a conflict: its early activation (a run of its own, parked on
      // the same signal) must not stay behind.
      await assert.rejects(engine.runs.start('approval', 2, { workflowId: 'a1' }), (e: unknown) => isAionError(e) && e.code === 'conflict');
      assert.equal(await residentSettled(engine), 1, 'the refused start left a run resident');

      // A start whose write fails: `store`, nothing recorded, nothing resident.
      kv.failWhen = (ops) => ops.some((op) => op.key === K.run('a2'));
      await assert.rejects(engine.runs.start('approval', 3, { workflowId: 'a2' }), (e: unknown) => isAionError(e) && e.code === 'store');
      kv.failWhen = undefined;
      assert.equal(await engine.runs.getRun('a2'), undefined);
      assert.equal(await residentSettled(engine), 1, 'the start that was not written left a run resident');

      // Both run as if nothing had happened.
      assert.equal((await engine.runs.start('approval', 4, { workflowId: 'a2' })).status, 'running');
      assert.equal((await engine.runs.signal('a2', 'approve', 'yes')).status, 'completed');
      assert.equal((await engine.runs.signal('a1', 'approve', 'no')).status, 'completed');
      assert.deepEqual([(await engine.runs.show('a1')).result, (await engine.runs.show('a2')).result].map((r) => (r as { request: unknown; decision: unknown }).request), [1, 4]);
      assert.equal(await residentSettled(engine), 0);
    } finally {
      await engine.close();
    }
  });
});

describe('review findings on the run path (issue 11, item 6)', () => {
  test('a child recorded with a version pins it until the record lands: a concurrent unload of that version is refused', async () => {
    const state = path.join(work.dir, 'child-pin-race');
    const kv = await SlowKV.open(state);
    const warnings: string[] = [];
    const engine = await Engine.open({ stateDir: state, create: true, lockTimeoutMs: 5_000, kv, onWarning: (m) => warnings.push(m) });
    try {
      await engine.loadPackage({ path: hello1.path });
      await engine.loadPackage({ path: parent.path });
      // The batch that first writes a pin of hello v1 — the parent recording its child
      // `ctx.child('hello', …)` with the routed version, v1 — is held for 1.5 s.
      const v1Pins = K.pinRange('hello', hello1.version);
      kv.slowWhen = (ops) => ops.some((op) => op.type === 'put' && op.key > v1Pins.gt && op.key < v1Pins.lt);
      kv.delayMs = 1500;
      const started = engine.runs.start('parent', null, { workflowId: 'p1' });
      const entered = await Promise.race([kv.entered.then(() => true), sleep(10_000).then(() => false)]);
      assert.ok(entered, 'the parent never wrote a pin of hello v1 for its child');
      kv.slowWhen = undefined;

      // While that write is in flight: route hello to v2, then try to unload v1.
      await engine.loadPackage({ path: hello2.path });
      const unload = await engine.unloadWorkflowVersion('hello', hello1.version).then(
        (outcome) => ({ outcome, error: undefined }),
        (error: unknown) => ({ outcome: undefined, error }),
      );
      const out = await started;
      const shown = await engine.runs.show('p1');
      const recorded = (shown.history as WorkflowEvent[]).find((e) => e.type === 'ChildWorkflowStarted');

      assert.ok(
        isAionError(unload.error, 'version_pinned'),
        `unloading hello v1 while the parent's record of a child on v1 was being written must be refused (version_pinned); got ${unload.error ? String(unload.error) : JSON.stringify(unload.outcome)}; the parent then ended ${out.status}, child recorded on ${recorded && recorded.type === 'ChildWorkflowStarted' ? recorded.package_version.slice(0, 12) : 'nothing'}; warnings: ${warnings.join(' | ')}`,
      );
      assert.ok(recorded && recorded.type === 'ChildWorkflowStarted');
      assert.equal(recorded.package_version, hello1.version, 'the child is recorded with the version routed when the parent asked for it');
      assert.equal(shown.status, 'completed', 'the parent progresses: its child started on the recorded version');
      assert.deepEqual(shown.result, { child: { greeting: 'hello, child' } });
      const child = await engine.runs.show(recorded.child_workflow_id);
      assert.deepEqual([child.version, child.status], [hello1.version, 'completed']);
      // Nothing pins v1 any more: now it goes.
      assert.equal((await engine.unloadWorkflowVersion('hello', hello1.version)).unloaded, true);
    } finally {
      await engine.close();
    }
  });

  for (const damage of ['missing', 'truncated'] as const) {
    test(`a start on a version whose stored archive is ${damage} fails with store and records nothing`, async () => {
      const state = path.join(work.dir, `archive-${damage}`);
      let { engine } = await openEngine(state);
      await engine.loadPackage({ path: hello2.path });
      await engine.close();
      // Damage the stored archive behind the engine's back; the package row and route stay.
      if (TEST_BACKEND === 'postgres') {
        // Archives are rows of the shared store there.
        const kv = await openTestKV(state);
        const key = K.archive('hello', hello2.version);
        const bytes = await kv.get(key);
        assert.ok(bytes && bytes.length > 100);
        await kv.batch([damage === 'missing' ? { type: 'del', key } : { type: 'put', key, value: bytes.slice(0, bytes.length >> 1) }], { sync: true });
        await kv.close();
      } else {
        const file = storedArchive(state, hello2.version);
        const bytes = readFileSync(file);
        assert.ok(bytes.length > 100);
        if (damage === 'missing') rmSync(file);
        else writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
      }

      ({ engine } = await openEngine(state));
      try {
        let outcome: unknown;
        let error: unknown;
        try {
          outcome = await engine.runs.start('hello', { name: 'x' }, { workflowId: 'doomed' });
        } catch (e) {
          error = e;
        }
        assert.ok(isAionError(error, 'store'), `expected the start to fail with store; got ${error ? String(error) : `a started run: ${JSON.stringify(outcome)}`}`);
        assert.match((error as Error).message, /archive/);
        assert.deepEqual(await keysIn(engine, K.runRange()), [], 'no run record');
        assert.deepEqual(await keysIn(engine, range('hist')), [], 'no history');
        assert.deepEqual(await keysIn(engine, K.activeRange()), [], 'no active marker');
        assert.deepEqual(await keysIn(engine, K.pinRange('hello', hello2.version)), [], 'no pin');
        await assert.rejects(engine.runs.show('doomed'), (e: unknown) => isAionError(e, 'not_found'));
        const [info] = await engine.listWorkflowVersions('hello');
        assert.deepEqual(info!.pins, { live: 0, recoverable: 0, recorded_children: 0 });
      } finally {
        await engine.close();
      }
    });
  }
});
