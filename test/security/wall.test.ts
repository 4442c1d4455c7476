// The sandbox wall, attacked: nothing of the host realm is reachable from workflow or activity
// code (dynamic import, host errors thrown by the bridge, constructor chains, stack formatters,
// missing globals), inherited names pass no check, prototypes cannot be patched to bypass the
// activity allowlist, child ids cannot alias another run's keys, and workflow code sees UTC and
// en-US whatever the host's. Each attack that would reach the host tries to create a marker file;
// the marker must never appear. Through bin/aion where the path exists there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packProject } from '../../src/package/index.js';
import { aion, aionAsync, tempDir } from '../helpers/cli.js';
import { openEngine } from '../engine/support.js';

const work = tempDir('aion-wall-');
const marker = path.join(work.dir, 'PWNED');
/** Code that, given a host `process`, creates the marker. */
const pwn = (proc: string) => `(${proc}).mainModule ? 0 : 0; try { const p = ${proc}; p.getBuiltinModule ? p.getBuiltinModule('fs').writeFileSync(${JSON.stringify(marker)}, 'x') : p.binding('fs'); } catch (e) {}`;

let n = 0;
async function project(source: string, manifest: Record<string, unknown> = {}, type = `wall${++n}`): Promise<{ path: string; type: string; version: string }> {
  const dir = path.join(work.dir, type);
  mkdirSync(path.join(dir, 'modules'), { recursive: true });
  writeFileSync(path.join(dir, 'workflow.json'), JSON.stringify({ entry_module: type, entry_function: 'run', timeout_seconds: 5, activities: [], ...manifest }));
  writeFileSync(path.join(dir, 'modules', `${type}.js`), source);
  const { path: file, pkg } = await packProject(dir, { out: path.join(work.dir, `${type}.aion`) });
  return { path: file, type, version: pkg.version };
}

const stateOf = (name: string) => path.join(work.dir, `state-${name}`);

test('import() and import.meta are refused at load, even behind comments; strings that mention them are fine', async () => {
  const attacks = [
    `import('x').catch((e) => { ${pwn("e.constructor.constructor('return process')()")} });\nexports.run = async () => 1;`,
    `import /* hidden */ ('x').then(() => {}, (e) => { ${pwn("e.constructor.constructor('return process')()")} });\nexports.run = async () => 1;`,
    `exports.run = async () => import.meta;`,
    `exports.run = async () => { const f = () => im\\u0070ort; return 1; };`, // not an import: a syntax error in V8 or an identifier
  ];
  for (const [i, source] of attacks.entries()) {
    const pkg = await project(source);
    // The real load first: it creates the state directory a dry run then reads.
    for (const args of [['load', pkg.path], ['load', pkg.path, '--dry-run']]) {
      const r = aion(['--state-dir', stateOf(`import${i}`), '--json', ...args]);
      assert.equal(r.code, 6, `attack ${i} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.json.error.code, 'invalid_package');
    }
    if (i < 3) assert.match(aion(['--state-dir', stateOf(`import${i}`), '--json', 'load', pkg.path]).json.error.message, /import(\(\)|\.meta)/);
  }
  const benign = await project(`// we never import('x') here\nexports.run = async () => 'import("x") is just text';`);
  const r = aion(['--state-dir', stateOf('import-benign'), '--json', 'load', benign.path]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(existsSync(marker), false, 'no attack reached the host');
});

test('constructor chains, host errors from the bridge and stack formatters reach nothing', async () => {
  const pkg = await project(`
    const tries = {};
    const attempt = (name, fn) => { try { const v = fn(); tries[name] = typeof v === 'object' && v && typeof v.pid === 'number' ? 'HOST' : 'no: ' + typeof v; } catch (e) { tries[name] = 'blocked'; } };
    exports.run = async (ctx) => {
      attempt('ctx', () => ctx.constructor.constructor('return process')());
      attempt('ctx.activity', () => ctx.activity.constructor('return process')());
      attempt('ctx.info', () => ctx.info.constructor.constructor('return process')());
      attempt('promise', () => ctx.sleep.constructor('return process')());
      attempt('global', () => globalThis.constructor.constructor('return process')());
      attempt('bridge error', () => { try { require('y'.repeat(536870887)); } catch (e) { return e.constructor.constructor('return process')(); } });
      attempt('long spec', () => { try { require('z'.repeat(100000)); } catch (e) { return e.constructor.constructor('return process')(); } });
      attempt('eval', () => eval('process'));
      attempt('Function', () => Function('return process')());
      attempt('prepareStackTrace', () => { Error.prepareStackTrace = (e, frames) => frames[0].getThis(); return new Error('x').stack; });
      const stack = (() => new Error('where').stack)();
      const globals = ['process', 'require', 'setTimeout', 'setInterval', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'WeakRef', 'FinalizationRegistry', 'Buffer', 'fetch'].filter((g) => typeof globalThis[g] !== 'undefined');
      try { ${pwn('process')} } catch (e) {}
      return { tries, stack, globals };
    };`);
  const { engine } = await openEngine(stateOf('chains'));
  try {
    await engine.loadPackage({ path: pkg.path });
    const run = await engine.runs.start(pkg.type, null, { workflowId: 'chains' });
    const shown = await engine.runs.show('chains');
    assert.equal(run.status, 'completed', JSON.stringify(shown.error));
    const result = shown.result as { tries: Record<string, string>; stack: string; globals: string[] };
    for (const [name, outcome] of Object.entries(result.tries)) assert.notEqual(outcome, 'HOST', `${name} reached the host`);
    assert.equal(result.tries.eval, 'blocked');
    assert.equal(result.tries.Function, 'blocked');
    assert.deepEqual(result.globals, []);
    assert.doesNotMatch(result.stack, /\/|file:|node:/, `stacks show no host frame or path: ${result.stack}`);
    assert.match(result.stack, new RegExp(`${pkg.type}\\$${pkg.version}:\\d+:\\d+`), 'module frames are named name$version');
  } finally {
    await engine.close();
  }
  assert.equal(existsSync(marker), false);
});

test('inherited names pass no check, and patched prototypes cannot widen the activity allowlist', async () => {
  const inherited = await project(`exports.run = async () => 1;`, { entry_function: 'isPrototypeOf' });
  let r = aion(['--state-dir', stateOf('inherited'), '--json', 'load', inherited.path]);
  assert.equal(r.code, 6, r.stdout);
  assert.match(r.json.error.message, /isPrototypeOf/);
  const inheritedActivity = await project(`exports.run = async () => 1; exports.activities = {};`, { activities: ['__lookupGetter__'] });
  r = aion(['--state-dir', stateOf('inherited'), '--json', 'load', inheritedActivity.path]);
  assert.equal(r.code, 6, r.stdout);
  assert.match(r.json.error.message, /__lookupGetter__/);

  const patcher = await project(`
    exports.run = async (ctx) => {
      const patched = [];
      const yes = () => true;
      for (const [name, proto] of [['includes', Array.prototype], ['has', Set.prototype], ['test', RegExp.prototype]]) {
        try { proto[name] = yes; } catch (e) {}
        try { Object.defineProperty(proto, name, { value: yes }); } catch (e) {}
        if (proto[name] === yes) patched.push(name);
      }
      let called = 'refused';
      try { await ctx.activity('secret', null); called = 'ran'; } catch (e) { called = 'refused: ' + e.message; }
      function Own() {} Own.prototype.toString = function () { return 'own'; };
      return { patched, called, own: String(new Own()) };
    };
    exports.activities = { ok: async () => 1, secret: async () => 'secret' };`, { activities: ['ok'] });
  const { engine } = await openEngine(stateOf('patch'));
  try {
    await engine.loadPackage({ path: patcher.path });
    await engine.runs.start(patcher.type, null, { workflowId: 'patch' });
    const shown = await engine.runs.show('patch');
    assert.equal(shown.status, 'completed', JSON.stringify(shown.error));
    const result = shown.result as { patched: string[]; called: string; own: string };
    assert.deepEqual(result.patched, [], 'intrinsics are frozen');
    assert.match(result.called, /^refused: activity 'secret' is not declared/);
    assert.equal(result.own, 'own', 'own objects still override inherited methods');
  } finally {
    await engine.close();
  }
});

test('a child workflow id is validated like --id: no id aliases another run\'s keys', async () => {
  const victim = await project(`exports.run = async (ctx) => { await ctx.sleep(3600); return 'woke'; };`, {}, 'victim');
  const attacker = await project(`
    exports.run = async (ctx, input) => {
      try { await ctx.child('victim', null, { workflowId: input }); return 'accepted'; } catch (e) { return 'refused: ' + e.message; }
    };`, {}, 'attacker');
  const { engine } = await openEngine(stateOf('alias'));
  try {
    await engine.loadPackage({ path: victim.path });
    await engine.loadPackage({ path: attacker.path });
    await engine.runs.start('victim', null, { workflowId: 'victim' });
    const ids = ['victim\u00000000000001\u0000z', 'line\nbreak', 'esc\u001b[31m', 'x'.repeat(201), 'with space', ''];
    for (const [i, id] of ids.entries()) {
      await engine.runs.start('attacker', id, { workflowId: `attacker-${i}` });
      const shown = await engine.runs.show(`attacker-${i}`);
      assert.equal(shown.status, 'completed', `${JSON.stringify(id)}: ${JSON.stringify(shown.error)}`);
      assert.match(String(shown.result), /^refused: ctx\.child options\.workflowId must be/, JSON.stringify(id));
    }
    assert.equal(await engine.runs.fireDueTimers(Date.now() + 60_000), 0, "the victim's one-hour timer is not due");
    assert.equal((await engine.runs.show('victim')).status, 'running');
    assert.equal((await engine.runs.list()).length, 1 + ids.length, 'no child run was created');
  } finally {
    await engine.close();
  }
});

test('workflow code sees UTC and en-US whatever TZ and LANG say, so a run survives a host change', async () => {
  const pkg = await project(`
    exports.run = async (ctx) => {
      const first = [new Date(0).getHours(), new Date(0).toString(), (1234.5).toLocaleString(), new Date(86400000).toLocaleDateString(), new Intl.DateTimeFormat().resolvedOptions().timeZone];
      await ctx.activity('tick', first);
      await ctx.signal('go');
      return { first, second: [new Date(0).getHours(), new Date(0).toString(), (1234.5).toLocaleString(), new Date(86400000).toLocaleDateString(), new Intl.DateTimeFormat().resolvedOptions().timeZone] };
    };
    exports.activities = { tick: async (x) => x };`, { activities: ['tick'] });
  const state = stateOf('tz');
  assert.equal(aion(['--state-dir', state, 'load', pkg.path]).code, 0);
  let r = await aionAsync(['--state-dir', state, '--json', 'start', pkg.type, '--id', 'tz'], { env: { TZ: 'UTC', LANG: 'en_US.UTF-8', LC_ALL: 'en_US.UTF-8' } });
  assert.equal(r.code, 0, r.stderr);
  r = await aionAsync(['--state-dir', state, '--json', 'signal', 'tz', 'go'], { env: { TZ: 'Asia/Tokyo', LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.status, 'completed', r.stdout);
  const shown = aion(['--state-dir', state, '--json', 'show', 'tz']).json;
  assert.deepEqual(shown.result.first, [0, 'Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)', '1,234.5', '1/2/1970', 'UTC']);
  assert.deepEqual(shown.result.second, shown.result.first);
});

test('two runs of one version never see each other\'s globals or module state', async () => {
  const pkg = await project(`
    let moduleCount = 0;
    exports.run = async (ctx, input) => {
      globalThis.mark = input;
      sloppyGlobal = input;
      moduleCount += 1;
      await ctx.signal('go');
      return { mark: globalThis.mark, sloppy: sloppyGlobal, moduleCount };
    };`);
  const { engine } = await openEngine(stateOf('globals'));
  try {
    await engine.loadPackage({ path: pkg.path });
    await engine.runs.start(pkg.type, 'a', { workflowId: 'ga' });
    await engine.runs.start(pkg.type, 'b', { workflowId: 'gb' });
    await engine.runs.signal('ga', 'go', null);
    await engine.runs.signal('gb', 'go', null);
    assert.deepEqual((await engine.runs.show('ga')).result, { mark: 'a', sloppy: 'a', moduleCount: 1 });
    assert.deepEqual((await engine.runs.show('gb')).result, { mark: 'b', sloppy: 'b', moduleCount: 1 });
  } finally {
    await engine.close();
  }
});

test('a run that reshapes the global object (prototype, symbols, non-configurable keys, freeze) changes nothing for other runs', async () => {
  // Each attack is tried by run `bad`; run `good` of the same version (same thread, same
  // context) then reports what it sees and whether it can still define a global of its own.
  const pkg = await project(`
    const tried = (fn) => { try { fn(); return 'done'; } catch (e) { return 'refused: ' + e.name; } };
    exports.run = async (ctx, input) => {
      if (input === 'bad') {
        const out = {
          proto: tried(() => Object.setPrototypeOf(globalThis, { leakedProto: 1 })),
          reflectProto: tried(() => { if (!Reflect.setPrototypeOf(globalThis, { leakedProto: 1 })) throw new TypeError('no'); }),
          dunderProto: tried(() => { globalThis.__proto__ = { leakedProto: 1 }; }),
          symbol: tried(() => { globalThis[Symbol.for('leak')] = 1; }),
          fixed: tried(() => Object.defineProperty(globalThis, 'leakedFixed', { value: 1, configurable: false })),
          preventExtensions: tried(() => Object.preventExtensions(globalThis)),
          freeze: tried(() => Object.freeze(globalThis)),
        };
        await ctx.signal('go');
        return out;
      }
      globalThis.mine = 'good';
      return {
        proto: typeof leakedProto,
        symbol: typeof globalThis[Symbol.for('leak')],
        fixed: typeof globalThis.leakedFixed,
        extensible: Object.isExtensible(globalThis),
        mine: globalThis.mine,
      };
    };`);
  const { engine } = await openEngine(stateOf('reshape'));
  try {
    await engine.loadPackage({ path: pkg.path });
    await engine.runs.start(pkg.type, 'bad', { workflowId: 'bad' });
    const good = await engine.runs.start(pkg.type, 'good', { workflowId: 'good' });
    assert.equal(good.status, 'completed');
    assert.deepEqual((await engine.runs.show('good')).result, { proto: 'undefined', symbol: 'undefined', fixed: 'undefined', extensible: true, mine: 'good' });
    await engine.runs.signal('bad', 'go', null);
    const bad = await engine.runs.show('bad');
    assert.equal(bad.status, 'completed', JSON.stringify(bad));
    // Reshaping the shared global object is refused with a TypeError (the run sees why); a
    // symbol-keyed or "non-configurable" global is the run's own, like any other global.
    const result = bad.result as Record<string, string>;
    for (const key of ['proto', 'reflectProto', 'dunderProto', 'preventExtensions', 'freeze']) assert.equal(result[key], 'refused: TypeError', key);
    assert.equal(result.symbol, 'done');
    assert.equal(result.fixed, 'done');
  } finally {
    await engine.close();
  }
});

test('cleanup', () => work.cleanup());
