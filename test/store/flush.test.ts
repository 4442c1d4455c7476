// Store.flush: the synchronous write that makes every earlier write durable before a command
// reports it (a start, a signal, a termination). Run against a KV whose synchronous batches
// take a while, so that two commands flush at once, as they do under `aion serve`.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Store, putJSON } from '../../src/store/store.js';
import type { BatchOp } from '../../src/store/kv.js';
import { InstrumentedKV } from '../engine/support.js';
import { openLevel } from '../../src/store/level.js';
import { tempDir } from '../helpers/cli.js';

const work = tempDir('aion-flush-');
after(() => work.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A KV whose synchronous batches land `syncMs` late, failing while `failSync` is set; it logs when each batch lands. */
class SlowSyncKV extends InstrumentedKV {
  syncMs = 150;
  failSync = false;
  readonly landed: { sync: boolean; keys: string[] }[] = [];
  override async batch(ops: BatchOp[], options: { sync: boolean }) {
    if (options.sync) {
      await sleep(this.syncMs);
      if (this.failSync) throw new Error('injected: the disk refused the synchronous write');
    }
    await super.batch(ops, options);
    this.landed.push({ sync: options.sync, keys: ops.map((op) => op.key) });
  }
}

async function slowStore(name: string): Promise<{ store: Store; kv: SlowSyncKV }> {
  const dir = path.join(work.dir, name);
  const kv = new SlowSyncKV(await openLevel(dir, { lockTimeoutMs: 5_000 }));
  return { store: await Store.over(kv, dir), kv };
}

describe('Store.flush', () => {
  test('a flush that finds another one in flight waits for it: no command reports a write before it is synced', async () => {
    const { store, kv } = await slowStore('concurrent');
    try {
      await store.write([putJSON('run\x00a', { a: 1 })], { sync: false });
      await store.write([putJSON('run\x00b', { b: 1 })], { sync: false });
      // Two commands flush at once; each may report only once a synchronous write has landed
      // after its own write.
      const syncsBefore = kv.landed.filter((b) => b.sync).length;
      const order: string[] = [];
      const first = store.flush().then(() => order.push('first'));
      const second = store.flush().then(() => order.push('second'));
      await sleep(30);
      assert.deepEqual(order, [], 'a flush returned before any synchronous write landed');
      await Promise.all([first, second]);
      assert.equal(kv.landed.filter((b) => b.sync).length - syncsBefore, 1, 'the two flushes shared one synchronous write');
    } finally {
      await store.close();
    }
  });

  test('a write that lands after a flush was issued is flushed again, not taken as covered', async () => {
    const { store, kv } = await slowStore('later');
    try {
      await store.write([putJSON('run\x00a', { a: 1 })], { sync: false });
      const first = store.flush();
      await sleep(10); // the first flush's synchronous write is on its way
      await store.write([putJSON('run\x00b', { b: 1 })], { sync: false });
      await store.flush();
      await first;
      const syncs = kv.landed.map((b, i) => ({ ...b, i })).filter((b) => b.sync);
      const bAt = kv.landed.findIndex((b) => b.keys.includes('run\x00b'));
      assert.ok(syncs.some((s) => s.i > bAt), 'a synchronous write landed after the second write');
    } finally {
      await store.close();
    }
  });

  test('a failed flush leaves the writes pending: the next flush writes again, and its callers see the failure', async () => {
    const { store, kv } = await slowStore('failing');
    try {
      await store.write([putJSON('run\x00a', { a: 1 })], { sync: false });
      const syncsBefore = kv.landed.filter((b) => b.sync).length;
      kv.failSync = true;
      const a = store.flush();
      const b = store.flush();
      await assert.rejects(a, /could not write the state directory/);
      await assert.rejects(b, /could not write the state directory/, 'a caller that joined the failed flush is not told its write is durable');
      kv.failSync = false;
      await store.flush();
      assert.equal(kv.landed.filter((x) => x.sync).length - syncsBefore, 1, 'the retry wrote the flush');
    } finally {
      await store.close();
    }
  });
});
