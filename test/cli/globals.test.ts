// The scripting contract's global cases, run in-process on fake streams: --json with no
// command, --version, typo suggestions, -V only before the command name, help that fits 80
// columns and mentions the global options, and the state-directory errors of read commands.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { tempDir } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';
import { run } from '../ux/support.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let state: string;

before(async () => {
  work = tempDir('aion-globals-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  state = path.join(work.dir, 'state');
  const loaded = await run(['--state-dir', state, 'load', v1.path, '--json'], false);
  assert.equal(loaded.code, 0, loaded.stderr);
});
after(() => work.cleanup());

function json(stdout: string): any {
  return JSON.parse(stdout);
}

describe('--json is one JSON document in every case', () => {
  test('no command: usage, exit 2', async () => {
    const r = await run(['--json'], false);
    assert.equal(r.code, 2);
    assert.equal(json(r.stdout).error.code, 'usage');
    assert.equal(r.stderr, '');
    const plain = await run([], false);
    assert.equal(plain.code, 2);
    assert.equal(plain.stdout, '');
    assert.match(plain.stderr, /Usage: aion/);
    assert.match(plain.stderr, /error: no command given/);
  });

  test('--version --json and -V', async () => {
    const r = await run(['--version', '--json'], false);
    assert.equal(r.code, 0);
    assert.deepEqual(json(r.stdout), { version: '0.1.0' });
    assert.equal((await run(['-V'], false)).stdout, '0.1.0\n');
    assert.equal((await run(['--state-dir', state, '-V', 'versions'], false)).stdout, '0.1.0\n', '-V before the command is global');
  });

  test('--help --json: {"help": <text>}, for the program and a command', async () => {
    for (const args of [['--help', '--json'], ['ramp', '--help', '--json'], ['--json', 'status', '-h']]) {
      const r = await run(args, false);
      assert.equal(r.code, 0);
      assert.match(json(r.stdout).help, /^Usage: aion/, args.join(' '));
    }
  });

  test('typos: error.suggestions, and no "(Did you mean" inside the message', async () => {
    const r = await run(['versoins', '--json'], false);
    assert.equal(r.code, 2);
    const error = json(r.stdout).error;
    assert.deepEqual(error, { code: 'usage', message: "unknown command 'versoins'", suggestions: ['versions'] });
    const opt = await run(['--state-dir', state, 'load', v1.path, '--dry-rn', '--json'], false);
    assert.equal(opt.code, 2);
    assert.deepEqual(json(opt.stdout).error.suggestions, ['--dry-run']);
    assert.doesNotMatch(json(opt.stdout).error.message, /Did you mean/);
    const text = await run(['versoins'], false);
    assert.equal(text.stderr, "error: unknown command 'versoins'\nhint: did you mean versions? see 'aion --help' for the commands and global options\n");
  });
});

describe('-V/--version is global only before the command name', () => {
  test("runs --version takes its value (issue 13's first bullet)", async () => {
    const r = await run(['--state-dir', state, 'runs', '--type', 'approval', '--version', '3f2a9c', '--json'], false);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json(r.stdout), { runs: [] });
    await run(['--state-dir', state, 'start', 'hello', '--id', 'g-1', '--json'], false);
    const mine = await run(['--state-dir', state, 'runs', '--version', v1.version.slice(0, 6), '--json'], false);
    assert.deepEqual(json(mine.stdout).runs.map((x: { workflow_id: string }) => x.workflow_id), ['g-1']);
    const other = await run(['--state-dir', state, 'load', v1.path, '--version'], false);
    assert.equal(other.code, 2, 'after a command without a --version option it is an unknown option');
  });
});

describe('help', () => {
  test('aion --help and every aion <cmd> --help fit 80 columns, carry examples and the global options', async () => {
    const top = await run(['--help'], false);
    assert.equal(top.code, 0);
    const check = (name: string, text: string) => {
      for (const line of text.split('\n')) assert.ok(line.length <= 80, `${name}: ${line.length} columns: ${line}`);
      assert.match(text, /Examples:/, `${name} has examples`);
    };
    check('aion --help', top.stdout);
    assert.match(top.stdout, /12 timeout, 13 unavailable/);
    for (const { name } of COMMANDS.filter((c) => !c.name.startsWith('__'))) {
      const r = await run([name, '--help'], false);
      assert.equal(r.code, 0, name);
      check(`aion ${name} --help`, r.stdout);
      assert.match(r.stdout, /Global Options:\n(.|\n)*--state-dir/, `${name} lists the global options`);
      assert.doesNotMatch(r.stdout, /^Usage: aion \S+ \[options\]\n\n?Options:/, `${name} has a description`);
    }
  });
});

describe('state directory errors of read commands', () => {
  const reads: [string, string[]][] = [
    ['versions', ['versions']],
    ['runs', ['runs']],
    ['show', ['show', 'x']],
    ['history', ['history']],
    ['status', ['status']],
    ['top', ['top']],
    ['wait', ['wait', 'hello', 'abcd', '--drained', '--timeout', '0s']],
  ];

  test('a missing directory: not_found (exit 3) with error.state_dir, and nothing is created', async () => {
    const missing = path.join(work.dir, 'typo-state');
    for (const [name, args] of reads) {
      const r = await run(['--state-dir', missing, ...args, '--json'], false);
      assert.equal(r.code, 3, `${name}: ${r.stdout}`);
      assert.deepEqual(json(r.stdout).error.state_dir, missing, name);
    }
    assert.throws(() => readdirSync(missing));
  });

  test('a regular file, a directory of other files, a foreign LevelDB: store (exit 10), never written to', async () => {
    const file = path.join(work.dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const other = path.join(work.dir, 'project');
    mkdirSync(other);
    writeFileSync(path.join(other, 'notes.txt'), 'mine');
    const foreign = path.join(work.dir, 'foreign-db');
    const db = new Level<string, string>(foreign);
    await db.open();
    await db.put('someone', 'else');
    await db.close();
    const snapshot = (dir: string) => readdirSync(dir).sort().map((f) => [f, readFileSync(path.join(dir, f)).toString('base64')]);
    const before = { other: snapshot(other), foreign: snapshot(foreign) };
    for (const place of [file, other, foreign]) {
      for (const [name, args] of reads) {
        const r = await run(['--state-dir', place, ...args, '--json'], false);
        assert.equal(r.code, 10, `${name} on ${path.basename(place)}: ${r.stdout}`);
        assert.equal(json(r.stdout).error.code, 'store');
      }
    }
    // a write is refused on a file and on a foreign LevelDB too
    assert.equal((await run(['--state-dir', file, 'load', v1.path], false)).code, 10);
    assert.equal((await run(['--state-dir', foreign, 'load', v1.path], false)).code, 10);
    assert.equal(readFileSync(file, 'utf8'), 'not a directory');
    assert.deepEqual(snapshot(other), before.other);
    assert.deepEqual(snapshot(foreign), before.foreign);
  });

  test('an empty directory reads as an empty state and stays empty', async () => {
    const empty = path.join(work.dir, 'empty');
    mkdirSync(empty);
    const r = await run(['--state-dir', empty, 'versions', '--json'], false);
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(json(r.stdout), { versions: [] });
    assert.deepEqual(readdirSync(empty), []);
  });
});
