// The CLI in this process on fake terminal streams (isTTY, columns): colour, 12-character
// versions, relative times, the versions legend, the load view on stderr — and none of that
// with --json, --no-color or NO_COLOR.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';
import { ESC, plain, run, terminal, waitFor } from './support.js';
import { runCli } from '../../src/cli/program.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;

before(async () => {
  work = tempDir('aion-ux-tty-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
});
after(() => work.cleanup());

const SGR = /\x1b\[[0-9;]*m/;

function state(name: string): string[] {
  return ['--state-dir', path.join(work.dir, name)];
}

describe('on a terminal', () => {
  test('load draws its steps on stderr and prints a short, coloured result on stdout', async () => {
    const s = state('load');
    const r = await run([...s, 'load', v1.path]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(ESC), 'colour in the result');
    assert.equal(plain(r.stdout), `hello ${v1.version.slice(0, 12)}: load new version\nroute hello → ${v1.version.slice(0, 12)}\n`);
    const view = plain(r.stderr);
    assert.match(view, /load .*v1\.aion/);
    for (const label of ['read archive', 'validate', 'hash modules', 'register modules', 'verify entry', 'persist', 'route']) {
      assert.match(view, new RegExp(`✓ ${label}`), `step ${label} done`);
    }
    const again = await run([...s, 'load', v1.path]);
    assert.match(plain(again.stderr), /– register modules \(already loaded\)/);
    assert.match(plain(again.stderr), /route \(unchanged\)/);
    const dry = await run([...s, 'load', v2.path, '--dry-run']);
    assert.match(plain(dry.stderr), /– persist \(dry run\)/);
    assert.match(plain(dry.stdout), /would load new version/);
  });

  test('a failing load marks the failed step and prints one error line and a hint', async () => {
    const r = await run([...state('loadfail'), 'load', path.join(work.dir, 'missing.aion')]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    const text = plain(r.stderr);
    assert.match(text, /✗ read archive/);
    assert.match(text, /error: no such archive: .*missing\.aion\nhint: build one with: aion pack <project_dir>\n$/);
    assert.ok(SGR.test(r.stderr), 'the error is coloured');
  });

  test('versions: colour, 12-character versions, relative times, a legend', async () => {
    const s = state('versions');
    await run([...s, 'load', v1.path]);
    await run([...s, 'load', v2.path]);
    const r = await run([...s, 'versions']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(ESC));
    const text = plain(r.stdout);
    assert.ok(!text.includes(v1.version), 'no full hash');
    assert.match(text, new RegExp(`hello +${v1.version.slice(0, 12)} +drained +0 +0 +0 +just now`));
    assert.match(text, new RegExp(`hello +${v2.version.slice(0, 12)} +routed +0 +0 +0 +just now`));
    assert.match(text, /routed: new starts go here · ramping: a share of them · draining: still pinned\ndrained: nothing pins it/);
    assert.equal(r.stderr, '');
  });

  test('history and rollback read well', async () => {
    const s = state('history');
    await run([...s, 'load', v1.path]);
    await run([...s, 'load', v2.path, '-m', 'ship v2']);
    const back = await run([...s, 'rollback', 'hello']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(plain(back.stdout), `rolled back hello → ${v1.version.slice(0, 12)} (was ${v2.version.slice(0, 12)})\n`);
    const h = await run([...s, 'history']);
    const lines = plain(h.stdout).trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME +USER +OPERATION +TYPE +VERSION +PREVIOUS +MESSAGE$/);
    assert.match(lines[2]!, new RegExp(`^just now +\\S+ +load +hello +${v2.version.slice(0, 12)} +${v1.version.slice(0, 12)} +ship v2$`));
    assert.match(lines[3]!, new RegExp(`^just now +\\S+ +route +hello +${v1.version.slice(0, 12)} +${v2.version.slice(0, 12)} +rollback$`));
    assert.ok(h.stdout.includes(ESC));
  });

  test('--json on a terminal: one JSON document, no colour, no view', async () => {
    const s = state('json');
    const r = await run([...s, 'load', v1.path, '--json']);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.stdout).version, v1.version);
    assert.equal(r.stderr, '', 'no view with --json');
    assert.ok(!r.stdout.includes(ESC));
    const v = await run([...s, 'versions', '--json']);
    assert.equal(JSON.parse(v.stdout).versions[0].version, v1.version, 'full version in JSON');
    const e = await run([...s, 'rollback', 'hello', '--json']);
    assert.equal(e.code, 3);
    assert.equal(JSON.parse(e.stdout).error.code, 'not_found');
    assert.equal(e.stderr, '');
  });

  test('--no-color and NO_COLOR on a terminal: no colour in results or errors', async () => {
    const s = state('nocolor');
    const r = await run([...s, '--no-color', 'load', v1.path]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(ESC));
    assert.ok(!SGR.test(r.stderr), 'the view draws without colour');
    const saved = process.env.NO_COLOR;
    try {
      const streams = terminal();
      process.env.NO_COLOR = '1';
      const code = await runCli([...s, 'versions'], streams);
      assert.equal(code, 0);
      assert.ok(!streams.stdout.text.includes(ESC));
      assert.match(streams.stdout.text, /just now/, 'still the terminal layout');
      const failing = terminal();
      assert.equal(await runCli([...s, 'route', 'hello', 'ffff'], failing), 3);
      assert.ok(!failing.stderr.text.includes(ESC));
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  test('stdout piped, stderr a terminal: plain result, no view', async () => {
    const streams = terminal();
    streams.stdout.isTTY = false;
    const code = await runCli([...state('half'), 'load', v1.path], streams);
    assert.equal(code, 0);
    assert.equal(streams.stdout.text, `hello ${v1.version}: load new version\nroute hello → ${v1.version}\n`);
    assert.equal(streams.stderr.text, '');
  });

  test('top: a live view until q', async () => {
    const s = state('top');
    await run([...s, 'load', v1.path]);
    const streams = terminal();
    const done = runCli([...s, 'top', '--interval', '0.2'], streams);
    // Let it refresh a few times (ink may hold frames back until exit in CI).
    await new Promise((r) => setTimeout(r, 900));
    await waitFor(() => streams.stdin.rawMode, 5000, 'raw mode');
    streams.stdin.press('q');
    assert.equal(await done, 0);
    const text = plain(streams.stdout.text);
    assert.match(text, /aion top/);
    assert.match(text, new RegExp(`hello → ${v1.version.slice(0, 12)}`));
    assert.match(text, /q to quit/);
    assert.equal(streams.stdin.rawMode, false, 'raw mode restored');
  });
});
