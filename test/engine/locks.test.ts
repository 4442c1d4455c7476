// The per-workflow locks of the run side: FIFO per key, independent across keys, and forgotten
// once nobody holds or waits for them (a long-running serve must not keep one per workflow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMutex } from '../../src/concurrency.js';

test('a keyed mutex serializes one key in order, runs other keys alongside, and forgets idle keys', async () => {
  const locks = new KeyedMutex();
  const order: string[] = [];
  let releaseFirst!: () => void;
  const first = locks.run('a', async () => {
    order.push('a1 start');
    await new Promise<void>((r) => (releaseFirst = r));
    order.push('a1 end');
  });
  const second = locks.run('a', async () => void order.push('a2'));
  await locks.run('b', async () => void order.push('b'));
  assert.equal(locks.size, 1, 'only the held key is kept');
  releaseFirst();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  assert.equal(locks.size, 0, 'idle keys are forgotten');
  await assert.rejects(locks.run('c', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(locks.size, 0, 'a failing holder releases too');
  for (let i = 0; i < 1000; i++) await locks.run(`w${i}`, async () => undefined);
  assert.equal(locks.size, 0);
});
