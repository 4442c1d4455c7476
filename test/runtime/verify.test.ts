import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AionError } from '../../src/errors.js';
import { verifyEntry } from '../../src/runtime/sandbox.js';
import { ModuleRegistry } from '../../src/runtime/registry.js';
import { setup } from './support.js';

function refused(sources: Record<string, string>, pattern: RegExp, activities: string[] = [], timeoutMs = 200): void {
  const { registry, version } = setup(sources);
  assert.throws(
    () => verifyEntry(registry, version, 'flow', 'main', activities, { timeoutMs }),
    (error: unknown) => {
      assert.ok(error instanceof AionError, String(error));
      assert.equal(error.code, 'invalid_package');
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test('a well-formed entry verifies', () => {
  const { registry, version } = setup({
    flow: `const util = require('./flow/util');
      exports.main = async (ctx, input) => util.id(input);
      exports.activities = { charge: async () => 1, ship: async () => 2 };`,
    'flow@util': 'exports.id = (x) => x;',
  });
  verifyEntry(registry, version, 'flow', 'main', ['charge', 'ship']);
  verifyEntry(registry, version, 'flow', 'main', []);
});

test('an entry module that throws at load is refused with its error', () => {
  refused({ flow: `throw new Error('boom at load');` }, /evaluating entry module 'flow' threw Error: boom at load/);
  refused({ flow: `require('./flow/bad'); exports.main = async () => 1;`, 'flow@bad': `null.x;` }, /threw TypeError: Cannot read properties of null/);
});

test('an infinite loop at load is refused within the bound', () => {
  const t0 = Date.now();
  refused({ flow: `for (;;) {}` }, /evaluating entry module 'flow' did not finish within 150 ms \(infinite loop\?\)/, [], 150);
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
});

test('an endless promise chain at load is refused within the bound', () => {
  refused({ flow: `const spin = () => Promise.resolve().then(spin); spin(); exports.main = async () => 1;` }, /did not finish within 150 ms/, [], 150);
});

test('Node globals and modules are unavailable at load', () => {
  refused({ flow: `exports.main = async () => 1; exports.pid = process.pid;` }, /threw ReferenceError: process is not defined/);
  refused({ flow: `const fs = require('fs'); exports.main = async () => 1;` }, /cannot require 'fs' from module 'flow'/);
  refused({ flow: `const fs = require('node:fs'); exports.main = async () => 1;` }, /cannot require 'node:fs'/);
  refused({ flow: `Buffer.from('x'); exports.main = async () => 1;` }, /Buffer is not defined/);
  refused({ flow: `setTimeout(() => {}, 1); exports.main = async () => 1;` }, /setTimeout is not defined/);
  refused({ flow: `fetch('http://example.com'); exports.main = async () => 1;` }, /fetch is not defined/);
});

test('a missing entry function is refused', () => {
  refused({ flow: `exports.other = async () => 1;` }, /entry function 'main' is not exported by module 'flow' \(exports.main is undefined\)/);
  refused({ flow: `exports.main = 42;` }, /exports.main is number/);
});

test('a declared activity without implementation is refused, naming it', () => {
  refused({ flow: `exports.main = async () => 1; exports.activities = { charge: async () => 1 };` }, /declared activity 'ship' has no implementation in exports.activities of module 'flow'/, ['charge', 'ship']);
  refused({ flow: `exports.main = async () => 1;` }, /declared activities 'charge', 'ship' have no implementation/, ['charge', 'ship']);
  refused({ flow: `exports.main = async () => 1; exports.activities = { charge: 'nope' };` }, /'charge'/, ['charge']);
});

test('an entry module missing from the version, or an unknown version', () => {
  const { registry, version } = setup({ other: 'exports.main = async () => 1;' });
  assert.throws(() => verifyEntry(registry, version, 'flow', 'main', []), /entry module 'flow' is not among the package's modules/);
  assert.throws(
    () => verifyEntry(new ModuleRegistry(), version, 'flow', 'main', []),
    (error: unknown) => error instanceof AionError && error.code === 'not_found',
  );
});
