// ink and react take about half a second to import: commands that draw no view must never load
// them. A module-resolution hook (module.register, and CommonJS's resolver) records every URL
// bin/aion resolves; no URL
// may be inside node_modules/ink or node_modules/react. The bundle (dist/bundle) imports ink,
// react and the views by real import() too, so the view checks hold through it as through
// dist/src; the checks of which of our modules load run dist/src (AION_NO_BUNDLE=1), where
// each module is a file of its own — the bundle keeps the same ones lazy.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aion, ROOT, tempDir } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let register: string;
let trace: string;

const VIEW_MODULES = /\/node_modules\/(ink|react|react-reconciler|yoga-layout)\//;

before(async () => {
  work = tempDir('aion-ux-lazy-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  writeFileSync(
    path.join(work.dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
let file;
export async function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`,
  );
  register = path.join(work.dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
register(new URL('./hooks.mjs', import.meta.url), { data: { file: process.env.AION_RESOLVE_TRACE } });
// CommonJS requires too (ajv is required where it is used; the bundle requires its externals).
const Module = createRequire(import.meta.url)('node:module');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const found = resolveFilename.apply(this, args);
  if (found.startsWith('/')) appendFileSync(process.env.AION_RESOLVE_TRACE, pathToFileURL(found).href + '\\n');
  return found;
};
`,
  );
  trace = path.join(work.dir, 'trace.txt');
  mkdirSync(path.join(work.dir, 'state'));
});
after(() => work.cleanup());

/** Runs bin/aion with the resolve hook; returns the result and every URL it resolved. */
function traced(args: string[], unbundled = false): { code: number; urls: string[]; stderr: string } {
  rmSync(trace, { force: true });
  const r = aion(['--state-dir', path.join(work.dir, 'state'), ...args], {
    env: { NODE_OPTIONS: `--import ${pathToFileURL(register).href}`, AION_RESOLVE_TRACE: trace, AION_NO_BUNDLE: unbundled ? '1' : '' },
  });
  const urls = existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : [];
  return { code: r.code, urls, stderr: r.stderr };
}

describe('no ink or react on non-interactive paths', () => {
  test('the hook sees the modules a command resolves (control)', () => {
    const r = traced(['versions', '--json'], true);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.urls.some((u) => u.includes('/node_modules/commander/')), 'commander resolved through the hook');
    assert.ok(r.urls.some((u) => u.endsWith('/dist/src/cli/commands/versions.js')));
  });

  test('the hook would catch a view module (control)', () => {
    rmSync(trace, { force: true });
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, '-e', `import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/src/cli/views/load.js')).href)})`], {
      env: { ...process.env, AION_RESOLVE_TRACE: trace },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const urls = readFileSync(trace, 'utf8');
    assert.match(urls, /\/node_modules\/ink\//);
    assert.match(urls, /\/node_modules\/react\//);
  });

  const cases: [string, () => string[]][] = [
    ['load --json', () => ['load', v1.path, '--json']],
    ['load (piped text)', () => ['load', v2.path]],
    ['load --dry-run', () => ['load', v1.path, '--dry-run']],
    ['versions --json', () => ['versions', '--json']],
    ['versions (piped text)', () => ['versions']],
    ['history', () => ['history']],
    ['rollback --json', () => ['rollback', 'hello', '--json']],
    ['route', () => ['route', 'hello', v2.version]],
    ['top (piped: one snapshot)', () => ['top']],
    ['top --json', () => ['top', '--json']],
    ['runs', () => ['runs']],
    ['status --json', () => ['status', '--json']],
    ['status (piped text)', () => ['status']],
    ['ramp --clear', () => ['ramp', 'hello', '--clear']],
    ['wait --routed', () => ['wait', 'hello', v2.version, '--routed', '--timeout', '0s']],
    ['prune --dry-run', () => ['prune', '--dry-run']],
    ['completion bash', () => ['completion', 'bash']],
    ['__complete (TAB)', () => ['__complete', '--', 'route', 'hello', '']],
    ['a failing load', () => ['load', path.join(work.dir, 'missing.aion')]],
    ['--help', () => ['--help']],
  ];
  for (const [name, args] of cases) {
    test(name, () => {
      const r = traced(args());
      assert.ok(r.urls.length > 0, 'the hook recorded something');
      const loaded = r.urls.filter((u) => VIEW_MODULES.test(u));
      assert.deepEqual(loaded, [], `aion ${args().join(' ')} imported view modules (exit ${r.code}; ${r.stderr})`);
    });
  }
});

describe('start-up imports only what the command needs', () => {
  test('versions --json imports its own command module, not the others, chalk, the runtime or the package code', () => {
    const r = traced(['versions', '--json'], true);
    assert.equal(r.code, 0, r.stderr);
    const commands = r.urls.filter((u) => /\/dist\/src\/cli\/commands\/[a-z]+\.js$/.test(u) && !u.endsWith('/index.js'));
    assert.deepEqual(commands.map((u) => path.basename(u)), ['versions.js']);
    for (const forbidden of [/\/node_modules\/chalk\//, /\/dist\/src\/runtime\//, /\/dist\/src\/package\/(read|zip|pack)\.js$/, /\/node_modules\/fflate\//, /\/node_modules\/ajv\//]) {
      assert.ok(!r.urls.some((u) => forbidden.test(u)), `${forbidden} must not be imported by versions --json`);
    }
  });

  test('ajv (JSON Schema) is imported only on the paths that validate a schema', async () => {
    const family = await packFixture('family_v1', work.dir, 'family.aion');
    const AJV = /\/node_modules\/ajv\//;
    for (const args of [['load', v1.path, '--json'], ['start', 'hello', '--json'], ['versions', '--json'], ['inspect', v1.path, '--json']]) {
      const r = traced(args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.urls.some((u) => AJV.test(u)), `aion ${args.join(' ')} (no schema) must not import ajv`);
    }
    for (const args of [['inspect', family.path, '--json'], ['load', family.path, '--json'], ['start', 'family', '--input', '{"name":"x"}', '--json']]) {
      const r = traced(args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.urls.some((u) => AJV.test(u)), `aion ${args.join(' ')} validates with ajv (control)`);
    }
    const after = traced(['versions', '--json']);
    assert.ok(!after.urls.some((u) => AJV.test(u)), 'versions never imports ajv, schemas loaded or not');
  });

  test('help still lists every command', () => {
    const r = aion(['--help']);
    assert.equal(r.code, 0);
    for (const name of ['pack', 'inspect', 'load', 'versions', 'route', 'rollback', 'unload', 'history', 'start', 'signal', 'terminate', 'runs', 'show', 'top', 'serve', 'doctor']) {
      assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'), `${name} is listed`);
    }
    const typo = aion(['versoins', '--json']);
    assert.equal(typo.code, 2);
    assert.match(typo.json.error.message, /unknown command 'versoins'/);
  });
});
