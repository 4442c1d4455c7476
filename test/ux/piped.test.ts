// Piped output through bin/aion: plain, stable text with no escape codes — for every command,
// its help, and its errors — and every error is one `error:` line plus at most one `hint:` line.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { aion, FIXTURES, tempDir, type CliResult } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let approval: Packed;
let s: string[];

before(async () => {
  work = tempDir('aion-ux-piped-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  approval = await packFixture('approval', work.dir, 'approval.aion');
  s = ['--state-dir', path.join(work.dir, 'state')];
});
after(() => work.cleanup());

const ESC = '\x1b[';

function assertPlain(r: CliResult, what: string): void {
  assert.ok(!r.stdout.includes(ESC), `${what}: escape code in stdout: ${JSON.stringify(r.stdout.slice(0, 300))}`);
  assert.ok(!r.stderr.includes(ESC), `${what}: escape code in stderr: ${JSON.stringify(r.stderr.slice(0, 300))}`);
}

/** A failure without --json: nothing on stdout; `error: …` then optionally `hint: …` on stderr. */
function assertErrorShape(r: CliResult, what: string): void {
  assert.notEqual(r.code, 0, `${what} should fail`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('waiting '));
  assert.ok(lines.length >= 1 && lines.length <= 2, `${what}: one error line and at most one hint: ${r.stderr}`);
  assert.match(lines[0]!, /^error: \S/, what);
  if (lines[1] !== undefined) assert.match(lines[1], /^hint: \S/, what);
}

describe('piped output is plain', () => {
  test('every command, in a deploy flow, with and without NO_COLOR', () => {
    for (const env of [{}, { NO_COLOR: '1' }]) {
      const dir = ['--state-dir', path.join(work.dir, `flow-${Object.keys(env).length}`)];
      const steps: string[][] = [
        ['pack', path.join(FIXTURES, 'hello_v1'), '--out', path.join(work.dir, 'packed.aion')],
        ['inspect', v1.path],
        ['load', v1.path, '-m', 'first'],
        ['load', v2.path, '--dry-run'],
        ['load', v2.path],
        ['load', approval.path],
        ['versions'],
        ['versions', 'hello'],
        ['route', 'hello', v1.version.slice(0, 8)],
        ['rollback', 'hello', '--dry-run'],
        ['rollback', 'hello'],
        ['history'],
        ['history', 'hello', '--limit', '2'],
        ['start', 'hello', '--input', '{"name":"ada"}', '--id', 'h1'],
        ['start', 'approval', '--id', 'order-1'],
        ['runs'],
        ['show', 'h1'],
        ['signal', 'order-1', 'approve', '--input', '{"by":"ada"}'],
        ['unload', 'hello', v1.version, '--dry-run'],
        ['top'],
        ['serve', '--until-idle'],
      ];
      for (const args of steps) {
        const r = aion([...dir, ...args], { env });
        assert.equal(r.code, 0, `aion ${args.join(' ')}: ${r.stderr}`);
        assertPlain(r, `aion ${args.join(' ')}`);
        assert.ok(r.stdout.length > 0 || args[0] === 'serve', `aion ${args.join(' ')} printed a result`);
        if (args[0] !== 'serve') assert.equal(r.stderr, '', `aion ${args.join(' ')}: no chatter on stderr when piped`);
      }
    }
  });

  test('piped text keeps full versions and RFC 3339 times', () => {
    const dir = ['--state-dir', path.join(work.dir, 'full')];
    aion([...dir, 'load', v1.path]);
    const versions = aion([...dir, 'versions']);
    assert.match(versions.stdout, new RegExp(`hello +${v1.version} +routed +0 +0 +0 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z\\n$`));
    assert.doesNotMatch(versions.stdout, /routed: new starts go here/, 'no legend when piped');
    const load = aion([...dir, 'load', v2.path]);
    assert.equal(load.stdout, `hello ${v2.version}: load new version\nroute hello → ${v2.version} (was ${v1.version})\n`);
  });

  test('help of the program and of every command: plain, with a purpose and an example', () => {
    const top = aion(['--help']);
    assert.equal(top.code, 0);
    assertPlain(top, '--help');
    const names = [...top.stdout.matchAll(/^  ([a-z]+) /gm)].map((m) => m[1]!).filter((n) => n !== 'help');
    for (const expected of ['pack', 'inspect', 'load', 'versions', 'route', 'rollback', 'unload', 'history', 'start', 'signal', 'terminate', 'runs', 'show', 'top', 'serve']) {
      assert.ok(names.includes(expected), `aion --help lists ${expected}`);
    }
    for (const name of names) {
      const r = aion([name, '--help']);
      assert.equal(r.code, 0, name);
      assertPlain(r, `${name} --help`);
      assert.match(r.stdout, new RegExp(`^Usage: aion ${name} `), name);
      assert.match(r.stdout, /\nExamples:\n {2}\$ aion /, `${name} --help has an example`);
    }
  });

  test('errors: one line, a hint naming the next step, no escape codes', () => {
    const dir = ['--state-dir', path.join(work.dir, 'errors')];
    aion([...dir, 'load', v1.path]);
    const failing: [string[], number, RegExp?][] = [
      [['load', path.join(work.dir, 'missing.aion')], 2, /hint: build one with: aion pack/],
      [['inspect', path.join(work.dir, 'missing.aion')], 2, /hint: build one with: aion pack/],
      [['inspect', path.join(FIXTURES, 'hello_v1', 'workflow.json')], 6, /hint: check the archive with 'aion inspect <archive>'/],
      [['route', 'hello', 'ffff'], 3, /hint: see the loaded versions with 'aion versions hello'/],
      [['route', 'hello', 'xyz'], 2],
      [['unload', 'hello', v1.version], 5, /hint: load another version of 'hello' first/],
      [['rollback', 'hello'], 3, /hint: .*aion history hello/],
      [['rollback', 'nope'], 3],
      [['versions', 'nope'], 3],
      [['history', '--limit', 'x'], 2],
      [['start', 'nope'], 3, /hint: load a package for it first/],
      [['signal', 'nobody', 'go'], 3, /hint: list runs with 'aion runs'/],
      [['terminate', 'nobody'], 3],
      [['show', 'nobody'], 3],
      [['runs', '--status', 'weird'], 2, /hint: see 'aion runs --help'/],
      [['pack', path.join(work.dir, 'no-project')], 2],
      [['load'], 2, /hint: see 'aion load --help'/],
      [['frobnicate'], 2, /hint: see 'aion --help'/],
      [['--lock-timeout', 'soon', 'versions'], 2],
      [['top', '--interval', '0'], 2],
    ];
    for (const [args, code, hint] of failing) {
      const r = aion([...dir, ...args]);
      const what = `aion ${args.join(' ')}`;
      assert.equal(r.code, code, `${what}: ${r.stderr}`);
      assertPlain(r, what);
      if (code !== 0) assertErrorShape(r, what);
      if (hint) assert.match(r.stderr, hint, what);
      const j = aion([...dir, ...args, '--json']);
      assert.equal(j.code, code, `${what} --json`);
      assertPlain(j, `${what} --json`);
      if (code !== 0) {
        assert.equal(typeof j.json?.error?.code, 'string', `${what} --json prints one JSON error document: ${j.stdout}`);
      }
    }
  });
});
