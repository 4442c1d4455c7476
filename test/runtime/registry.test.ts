import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AionError } from '../../src/errors.js';
import { ModuleRegistry, HOST_MODULES } from '../../src/runtime/registry.js';
import { resolveSpecifier } from '../../src/runtime/resolve.js';
import { replay, runActivity } from '../../src/runtime/executor.js';
import { info, mods, newVersion, setup, started } from './support.js';

test('register returns deployed names in logical-name order and is idempotent', () => {
  const registry = new ModuleRegistry();
  const version = newVersion();
  const names = registry.register(version, mods({ flow: 'exports.main = async () => 1;', 'flow@util': '', aaa: '' }));
  assert.deepEqual(names, [`aaa$${version}`, `flow$${version}`, `flow@util$${version}`]);
  assert.equal(registry.has(version), true);
  assert.deepEqual(registry.deployedNames(version), names);
  assert.equal(registry.compileCount, 3);
  const module = registry.modules(version)?.get('flow');
  assert.deepEqual(registry.register(version, mods({ flow: 'exports.main = async () => 1;', 'flow@util': '', aaa: '' })), names);
  assert.equal(registry.compileCount, 3, 're-registering compiles nothing');
  assert.equal(registry.modules(version)?.get('flow'), module);
  assert.equal(registry.source(version, 'flow'), 'exports.main = async () => 1;');
  assert.equal(registry.has(newVersion()), false);
  assert.deepEqual(registry.deployedNames('ffff'), []);
});

test('a syntax error is invalid_package naming the module, and registers nothing', () => {
  const registry = new ModuleRegistry();
  const version = newVersion();
  assert.throws(
    () => registry.register(version, mods({ flow: 'exports.main = 1;', 'flow@broken': 'let x = ;\n' })),
    (error: unknown) =>
      error instanceof AionError && error.code === 'invalid_package' && /module 'flow@broken' does not compile \(line 1\)/.test(error.message),
  );
  assert.equal(registry.has(version), false);
  assert.deepEqual(registry.deployedNames(version), []);
});

test('invalid UTF-8 and invalid names are refused', () => {
  const registry = new ModuleRegistry();
  assert.throws(
    () => registry.register(newVersion(), new Map([['flow', new Uint8Array([0xff, 0xfe, 0x41])]])),
    (error: unknown) => error instanceof AionError && error.code === 'invalid_package' && /'flow' is not valid UTF-8/.test(error.message),
  );
  assert.throws(
    () => registry.register(newVersion(), mods({ 'Flow-X': '' })),
    (error: unknown) => error instanceof AionError && error.code === 'invalid_package' && /Flow-X/.test(error.message),
  );
});

test('unregister removes one module, is a no-op when repeated, and refuses host modules', () => {
  const registry = new ModuleRegistry();
  const version = newVersion();
  registry.register(version, mods({ flow: '', 'flow@util': '' }));
  assert.equal(registry.unregister(`flow@util$${version}`), true);
  assert.deepEqual(registry.deployedNames(version), [`flow$${version}`]);
  assert.equal(registry.unregister(`flow@util$${version}`), false);
  assert.equal(registry.unregister(`flow$${version}`), true);
  assert.equal(registry.has(version), false);

  assert.deepEqual(registry.hostModules(), [...HOST_MODULES]);
  assert.ok(registry.hostModules().includes('aion'));
  for (const host of registry.hostModules()) {
    assert.throws(
      () => registry.unregister(host),
      (error: unknown) => error instanceof AionError && error.message.includes(`host module '${host}'`),
    );
  }
  assert.deepEqual(registry.hostModules(), [...HOST_MODULES], 'still there after the refusal');
});

test('unregisterVersion removes every module of the version only', () => {
  const registry = new ModuleRegistry();
  const a = newVersion();
  const b = newVersion();
  registry.register(a, mods({ flow: '', 'flow@util': '' }));
  registry.register(b, mods({ flow: '' }));
  assert.deepEqual(registry.unregisterVersion(a), [`flow$${a}`, `flow@util$${a}`]);
  assert.equal(registry.has(a), false);
  assert.equal(registry.has(b), true);
});

test('resolveSpecifier maps relative paths onto logical names', () => {
  const all = new Set(['hello', 'hello@util', 'hello@deep@x', 'shared']);
  const has = (name: string) => all.has(name);
  const ok = (from: string, spec: string) => {
    const result = resolveSpecifier(from, spec, has);
    assert.equal(result.ok, true, `${spec} from ${from}: ${JSON.stringify(result)}`);
    return result.ok ? result.name : '';
  };
  assert.equal(ok('hello', './hello/util'), 'hello@util');
  assert.equal(ok('hello', './hello/util.js'), 'hello@util');
  assert.equal(ok('hello@util', './deep/x'), 'hello@deep@x');
  assert.equal(ok('hello@deep@x', '../util'), 'hello@util');
  assert.equal(ok('hello@deep@x', '../../shared.js'), 'shared');
  for (const spec of ['fs', 'node:fs', '/etc/passwd', 'hello/util', '../x', './missing', './hello//util', './Hello', `./hello$${'a'.repeat(64)}`]) {
    const result = resolveSpecifier('hello', spec, has);
    assert.equal(result.ok, false, spec);
    if (!result.ok) assert.ok(result.message.includes(`'${spec}'`), result.message);
  }
});

test('a version is checked once, not per run; each run gets fresh module state', async () => {
  const { registry, version } = setup({
    flow: `let runs = 0;
      exports.main = async (ctx) => { runs += 1; return runs; };
      exports.activities = { charge: async () => { runs += 1; return runs; } };`,
  });
  const before = registry.compileCount;
  for (let i = 0; i < 3; i++) {
    const activation = replay(registry, version, info({ runId: `run-${i}` }), [started(null, 1000, `run-${i}`)]);
    assert.deepEqual(activation, { status: 'completed', commands: [], result: 1 });
  }
  assert.equal(await runActivity(registry, version, 'flow', 'charge', null), 1);
  assert.equal(registry.compileCount, before, 'no check per run');
});

test('require loads siblings of the same version only', () => {
  const registry = new ModuleRegistry();
  const v1 = newVersion();
  const v2 = newVersion();
  registry.register(v1, mods({
    flow: `const util = require('./flow/util'); const again = require('./flow/util.js');
      exports.main = async () => [util.twice(21), util === again, util.helper()];`,
    'flow@util': `const h = require('./helper'); exports.twice = (n) => n * 2; exports.helper = () => h.name;`,
    'flow@helper': `exports.name = 'helper';`,
    lib: `exports.x = 1;`,
  }));
  assert.deepEqual(replay(registry, v1, info(), [started(null)]), { status: 'completed', commands: [], result: [42, true, 'helper'] });

  const requiring = (spec: string) => `exports.main = async () => { try { require(${JSON.stringify(spec)}); return 'loaded'; } catch (e) { return e.message; } };`;
  const cases: Array<[string, RegExp]> = [
    ['fs', /cannot require 'fs' from module 'flow': only relative paths/],
    ['node:fs', /cannot require 'node:fs'/],
    ['/tmp/x.js', /cannot require '\/tmp\/x.js'/],
    ['./lib', /cannot require '.\/lib' from module 'flow': no module 'lib' in this package version/],
    [`./lib$${v1}`, /cannot require '.\/lib\$/],
  ];
  for (const [spec, pattern] of cases) {
    const version = newVersion();
    registry.register(version, mods({ flow: requiring(spec) }));
    const activation = replay(registry, version, info(), [started(null)]);
    assert.equal(activation.status, 'completed');
    assert.match(String((activation as { result: unknown }).result), pattern, spec);
  }
  // The same require works in a version that has the module.
  registry.register(v2, mods({ flow: requiring('./lib'), lib: '' }));
  assert.deepEqual(replay(registry, v2, info(), [started(null)]), { status: 'completed', commands: [], result: 'loaded' });
});
