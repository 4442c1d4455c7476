import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AionError } from '../../src/errors.js';
import { ActivityError, runActivity } from '../../src/runtime/executor.js';
import { ModuleRegistry } from '../../src/runtime/registry.js';
import { setup } from './support.js';

const FLOW = `
const util = require('./flow/util');
exports.main = async (ctx) => null;
exports.activities = {
  charge: async (input) => {
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 30));
    console.log('charging', input.amount, { currency: 'EUR' });
    return { receipt: util.receipt(input.amount), waited: Date.now() - started >= 25, now: Date.now(), random: Math.random() };
  },
  cancelled: async () => {
    const id = setTimeout(() => { throw new Error('should not fire'); }, 10);
    clearTimeout(id);
    await new Promise((resolve) => setTimeout(resolve, 30));
    return 'clean';
  },
  mutate: async (input) => { input.list.push(3); return input.list instanceof Array; },
  fail: async () => { const e = new TypeError('card declined'); throw e; },
  syncFail: () => { throw new Error('sync boom'); },
  hang: () => new Promise(() => {}),
  spin: () => { for (;;) {} },
  spinLater: async () => { await new Promise((r) => setTimeout(r, 5)); for (;;) {} },
  timerThrows: () => new Promise(() => { setTimeout(() => { throw new Error('from a timer'); }, 5); }),
  bigint: async () => 1n,
  node: async () => [typeof process, typeof globalThis.require, typeof Buffer, typeof fetch, typeof setTimeout, typeof console.log],
};`;

function rejectsWith(promise: Promise<unknown>, name: string, pattern: RegExp): Promise<void> {
  return assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ActivityError, String(error));
    assert.equal(error.info.name, name);
    assert.match(error.message, pattern);
    assert.equal(error.info.message, error.message);
    return true;
  });
}

test('an activity runs with a real clock, timers, console and sibling modules', async () => {
  const { registry, version } = setup({ flow: FLOW, 'flow@util': `exports.receipt = (n) => 'R-' + n;` });
  const lines: string[] = [];
  const before = Date.now();
  const result = (await runActivity(registry, version, 'flow', 'charge', { amount: 12 }, { log: (level, text) => lines.push(`${level} ${text}`) })) as Record<string, unknown>;
  assert.equal(result.receipt, 'R-12');
  assert.equal(result.waited, true);
  assert.ok((result.now as number) >= before && (result.now as number) <= Date.now());
  assert.deepEqual(lines, ['log charging 12 {"currency":"EUR"}']);
  const again = (await runActivity(registry, version, 'flow', 'charge', { amount: 12 }, { log: () => {} })) as Record<string, unknown>;
  assert.notEqual(again.random, result.random, 'Math.random is the real one');
  assert.equal(await runActivity(registry, version, 'flow', 'cancelled', null), 'clean');
});

test('activity input is a clone; the sandbox has no Node APIs', async () => {
  const { registry, version } = setup({ flow: FLOW, 'flow@util': '' });
  const input = { list: [1, 2] };
  assert.equal(await runActivity(registry, version, 'flow', 'mutate', input), true);
  assert.deepEqual(input, { list: [1, 2] });
  assert.deepEqual(await runActivity(registry, version, 'flow', 'node', null), ['undefined', 'undefined', 'undefined', 'undefined', 'function', 'function']);
});

test('activity failures reject with the activity error message', async () => {
  const { registry, version } = setup({ flow: FLOW, 'flow@util': '' });
  await rejectsWith(runActivity(registry, version, 'flow', 'fail', null), 'TypeError', /^card declined$/);
  await rejectsWith(runActivity(registry, version, 'flow', 'syncFail', null), 'Error', /^sync boom$/);
  await rejectsWith(runActivity(registry, version, 'flow', 'timerThrows', null, { timeoutMs: 2_000 }), 'Error', /^from a timer$/);
  await rejectsWith(runActivity(registry, version, 'flow', 'bigint', null), 'TypeError', /result is not JSON-serializable/);
  await rejectsWith(runActivity(registry, version, 'flow', 'nope', null), 'TypeError', /activity 'nope' is not implemented by module 'flow'/);
});

test('activities are bounded in time: hanging, spinning now, spinning later', async () => {
  const { registry, version } = setup({ flow: FLOW, 'flow@util': '' });
  for (const name of ['hang', 'spin', 'spinLater']) {
    const t0 = Date.now();
    await rejectsWith(runActivity(registry, version, 'flow', name, null, { timeoutMs: 100 }), 'ActivityTimeout', new RegExp(`^activity '${name}' exceeded 100 ms$`));
    assert.ok(Date.now() - t0 < 2_000, `${name} took ${Date.now() - t0} ms`);
  }
});

test('a module that fails to load, or an unknown version', async () => {
  const { registry, version } = setup({ flow: `require('fs');` });
  await rejectsWith(runActivity(registry, version, 'flow', 'x', null), 'Error', /cannot require 'fs' from module 'flow'/);
  await assert.rejects(runActivity(new ModuleRegistry(), version, 'flow', 'x', null), (error: unknown) => error instanceof AionError && error.code === 'not_found');
});
