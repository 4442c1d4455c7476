// bin/aion's choice of what to run: the bundle (dist/bundle/aion.cjs, with its V8 code cache)
// when it is at least as new as dist/src, else dist/src; a clear failure when neither is
// built. Run against a copy of bin/ beside a made-up dist/ whose two entries only say which
// of them ran, so no test touches the real build. The last tests run the real bundle.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aion, ROOT, tempDir } from '../helpers/cli.js';
import { packFixture } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
let bin: string;
let bundle: string;
let cache: string;
let entry: string;

before(() => {
  work = tempDir('aion-bin-');
  mkdirSync(path.join(work.dir, 'bin'));
  for (const f of ['aion', 'package.json']) copyFileSync(path.join(ROOT, 'bin', f), path.join(work.dir, 'bin', f));
  bin = path.join(work.dir, 'bin', 'aion');
  mkdirSync(path.join(work.dir, 'dist', 'bundle'), { recursive: true });
  mkdirSync(path.join(work.dir, 'dist', 'src', 'cli'), { recursive: true });
  bundle = path.join(work.dir, 'dist', 'bundle', 'aion.cjs');
  cache = path.join(work.dir, 'dist', 'bundle', 'aion.cache');
  entry = path.join(work.dir, 'dist', 'src', 'cli', 'main.js');
  writeFileSync(path.join(work.dir, 'package.json'), '{"type":"module"}\n');
});
after(() => work.cleanup());

/** Writes both fake entries; the bundle `ageMs` older (negative: newer) than dist/src. */
function layout(ageMs: number): void {
  // The fake bundle reports what the real one relies on: its file URL, and a lazy built-in.
  writeFileSync(bundle, "process.stdout.write('bundle ' + __aionBundleUrl + ' ' + typeof require('node:crypto').createHash);\n");
  writeFileSync(entry, "process.stdout.write('src');\n");
  const now = Date.now() / 1000;
  utimesSync(entry, now, now);
  utimesSync(bundle, now - ageMs / 1000, now - ageMs / 1000);
}

function run(env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin], { encoding: 'utf8', env: { ...process.env, AION_NO_BUNDLE: '', NODE_OPTIONS: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/aion picks what to run', () => {
  test('a bundle at least as new as dist/src runs, with its URL and a lazily required built-in', () => {
    layout(-1000);
    rmSync(cache, { force: true });
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `bundle ${pathToFileURL(bundle).href} function`);
    assert.ok(existsSync(cache), 'the first run writes the code cache');
  });

  test('a bundle older than dist/src (a tsc run since) is not used', () => {
    layout(5000);
    assert.equal(run().stdout, 'src');
  });

  test('AION_NO_BUNDLE runs dist/src', () => {
    layout(-1000);
    assert.equal(run({ AION_NO_BUNDLE: '1' }).stdout, 'src');
  });

  test('no bundle: dist/src', () => {
    layout(0);
    rmSync(bundle);
    assert.equal(run().stdout, 'src');
  });

  test('other Node options keep a cache of their own, leaving the default one alone', () => {
    layout(-1000);
    rmSync(cache, { force: true });
    assert.equal(run().code, 0);
    const plain = readFileSync(cache);
    const r = run({ NODE_OPTIONS: '--max-old-space-size=300' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bundle /);
    const own = readdirSync(path.dirname(cache)).filter((f) => /^aion-[0-9a-f]{8}\.cache$/.test(f));
    assert.equal(own.length, 1, `one cache for those options: ${own.join(', ')}`);
    assert.ok(readFileSync(cache).equals(plain), 'the default cache is untouched');
  });

  test("a command that changes V8's flags (it runs workflow code: src/jit.cts) writes the cache just before, never after", () => {
    layout(-1000);
    // As jit.cts does: bin/aion's hook first, then the mark, then the flags.
    writeFileSync(
      bundle,
      "const before = globalThis[Symbol.for('aion.before-v8-flags')]; if (typeof before === 'function') before(); globalThis[Symbol.for('aion.v8-flags-changed')] = true; require('node:v8').setFlagsFromString('--max-opt=1'); process.stdout.write('changed');\n",
    );
    utimesSync(bundle, Date.now() / 1000 + 1, Date.now() / 1000 + 1);
    rmSync(cache, { force: true });
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'changed');
    assert.ok(existsSync(cache), 'the cache was written before the flags changed');
    const made = statSync(cache).ino;
    // The next start reads it under the old flags: accepted, so not written again (a rewrite
    // renames a new file into place).
    const again = run();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(statSync(cache).ino, made, 'the cache is valid for the next start (V8 did not reject it)');
    // A command that changes the flags without a cache to write (the hook's absence) leaves none.
    rmSync(cache, { force: true });
    writeFileSync(bundle, "globalThis[Symbol.for('aion.v8-flags-changed')] = true; process.stdout.write('marked');\n");
    utimesSync(bundle, Date.now() / 1000 + 2, Date.now() / 1000 + 2);
    assert.equal(run().stdout, 'marked');
    assert.ok(!existsSync(cache), 'no cache made after the flags changed');
  });

  test("the bundle's import() of modules outside it works, with and without the code cache", () => {
    layout(-1000);
    writeFileSync(path.join(work.dir, 'dist', 'src', 'view.mjs'), 'export const drawn = "view";\n');
    // A function called after start-up, as the views are: with a cache it comes from the cache,
    // where Node 20 has lost a script's own import() handler.
    writeFileSync(bundle, "setTimeout(() => __aionImport('../src/view.mjs').then((m) => process.stdout.write(m.drawn), (e) => process.stdout.write('failed: ' + e.message)), 1);\n");
    utimesSync(bundle, Date.now() / 1000 + 1, Date.now() / 1000 + 1);
    rmSync(cache, { force: true });
    assert.equal(run().stdout, 'view', 'no cache yet');
    assert.ok(existsSync(cache));
    assert.equal(run().stdout, 'view', 'from the cache');
  });

  test('a corrupt code cache is rejected by V8 and written anew', () => {
    layout(-1000);
    writeFileSync(cache, 'not a code cache');
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bundle /);
    assert.notEqual(readFileSync(cache, 'utf8'), 'not a code cache');
  });

  test('an unwritable cache only costs speed', () => {
    layout(-1000);
    rmSync(cache, { force: true });
    mkdirSync(cache); // a directory where the file would go: the write fails
    try {
      const r = run();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^bundle /);
      assert.equal(r.stderr, '');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test('a bundle that throws while loading: exit 1 with the npm install hint', () => {
    layout(-1000);
    writeFileSync(bundle, 'syntax error here(');
    utimesSync(bundle, Date.now() / 1000 + 1, Date.now() / 1000 + 1);
    const r = run();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^aion: cannot start \(.+\); run 'npm install'/);
  });

  test('nothing built: exit 1 with the npm install hint', () => {
    rmSync(bundle, { force: true });
    rmSync(entry, { force: true });
    const r = run();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^aion: cannot start \(.+\); run 'npm install' \(which builds dist\/\) first\n$/);
  });
});

/** Why bin/aion would not run the real bundle now, if it would not. */
function notBundled(): string | undefined {
  const real = path.join(ROOT, 'dist', 'bundle', 'aion.cjs');
  if (!existsSync(real)) return 'no dist/bundle (esbuild is not installed: an install without dev dependencies)';
  if (statSync(real).mtimeMs < statSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')).mtimeMs) {
    return 'dist/bundle is older than dist/src (tsc ran after the bundle; npm run build makes both)';
  }
  return undefined;
}

describe('the real bundle', () => {
  test('is built and fresh, so bin/aion runs it', (t) => {
    const why = notBundled();
    if (why) {
      t.skip(why);
      return;
    }
    const real = path.join(ROOT, 'dist', 'bundle', 'aion.cjs');
    const bundled = readFileSync(real);
    assert.ok(bundled.length > 100_000);
    // The views (with ink and react) stay outside, imported through bin/aion when a command
    // draws; no import() is left in the bundle itself.
    assert.match(bundled.toString('utf8'), /__aionImport\("\.\/\.\.\/src\/cli\/views\/top\.js"\)/);
    assert.doesNotMatch(bundled.toString('utf8'), /(?<![\w$.])import\(\s*["'`]/);
  });

  test('two copies of output.js (the bundle and a view from dist/src) share the colour mark', async () => {
    const url = pathToFileURL(path.join(ROOT, 'dist', 'src', 'cli', 'output.js')).href;
    const a = (await import(url)) as typeof import('../../src/cli/output.js');
    const b = (await import(`${url}?as-a-view-imports-it`)) as typeof import('../../src/cli/output.js');
    assert.notEqual(a, b, 'two module instances');
    await a.preloadColour();
    const tty = { isTTY: true, columns: 80, rows: 24, write: () => true } as unknown as NodeJS.WritableStream;
    const out = new a.Output({ stdout: tty, stderr: tty }, { json: false, color: true });
    assert.equal(b.finishText(out.c.red('x')), '\x1b[31mx\x1b[39m', "a view's finishText turns the bundle's colours into escape codes");
  });

  test('runs a workflow: the worker thread resolves from the bundle', async (t) => {
    const why = notBundled();
    if (why) {
      t.skip(why);
      return;
    }
    const dir = tempDir('aion-bin-run-');
    try {
      const v1 = await packFixture('hello_v1', dir.dir, 'v1.aion');
      const state = path.join(dir.dir, 'state');
      assert.equal(aion(['--state-dir', state, 'load', v1.path, '--json']).code, 0);
      const r = aion(['--state-dir', state, 'start', 'hello', '--input', '{"name":"ada"}', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.status, 'completed');
      const shown = aion(['--state-dir', state, 'show', r.json.workflow_id, '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(shown.json.result, { greeting: 'hello, ada' });

      // A bad AION_JIT: the command that would start code threads refuses, writing nothing.
      const bad = aion(['--state-dir', state, 'start', 'hello', '--id', 'never', '--json'], { env: { AION_JIT: 'fast\x1b[2J' } });
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal(bad.json.error.code, 'usage');
      assert.equal(bad.json.error.message, "AION_JIT must be 'baseline' or 'optimizing', not 'fast?[2J'");
      assert.equal(aion(['--state-dir', state, 'show', 'never', '--json']).code, 3, 'nothing was recorded');
    } finally {
      dir.cleanup();
    }
  });
});
