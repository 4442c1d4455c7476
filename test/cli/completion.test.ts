// Shell completion: the candidate rules in-process (commands, options, types, version
// prefixes, workflow ids, option values), and the bash script driving bin/aion against a
// real state directory, read at completion time.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildProgram } from '../../src/cli/program.js';
import { candidates, runComplete, type CompletionData } from '../../src/cli/commands/complete.js';
import { runCompletion } from '../../src/cli/commands/completion.js';
import { BIN, tempDir } from '../helpers/cli.js';
import { aionIn, commandContext, FakeStream } from '../helpers/inprocess.js';
import { packFixture, type Packed } from '../helpers/packages.js';
import { run } from '../ux/support.js';

const data: CompletionData = {
  types: async () => ['approval', 'hello'],
  versions: async (type) => (type === 'hello' ? ['aaaa11112222', 'bbbb33334444'] : ['cccc55556666']),
  workflowIds: async (running) => (running ? ['order-42'] : ['order-41', 'order-42']),
};

describe('completion candidates', () => {
  test('commands, options, arguments and option values', async () => {
    const program = await buildProgram();
    const c = (...words: string[]) => candidates(program, words, data);
    assert.deepEqual(await c('ro'), ['rollback', 'route']);
    assert.ok(!(await c('')).includes('__complete'), 'the hidden command is not offered');
    assert.deepEqual(await c('route', ''), ['approval', 'hello']);
    assert.deepEqual(await c('route', 'hello', ''), ['aaaa11112222', 'bbbb33334444']);
    assert.deepEqual(await c('--state-dir', '/x', 'unload', 'hello', 'b'), ['bbbb33334444']);
    assert.deepEqual(await c('ramp', 'approval', ''), ['cccc55556666']);
    assert.deepEqual(await c('ramp', 'approval', 'cccc', ''), [], 'a percent: nothing to offer');
    assert.deepEqual(await c('show', ''), ['order-41', 'order-42']);
    assert.deepEqual(await c('signal', ''), ['order-42'], 'only running workflows can take a signal');
    assert.deepEqual(await c('runs', '--status', 'c'), ['completed', 'continued_as_new']);
    assert.deepEqual(await c('runs', '--type', 'hello', '--version', ''), ['aaaa11112222', 'bbbb33334444']);
    assert.deepEqual(await c('runs', '--ty'), ['--type']);
    assert.ok((await c('load', '--')).includes('--no-route'));
    assert.ok((await c('load', '--')).includes('--state-dir'), 'global options too');
    assert.deepEqual(await c('load', ''), [], 'an archive: the shell completes files');
    assert.deepEqual(await c('completion', ''), ['bash', 'fish', 'zsh']);
    assert.deepEqual(await c('nosuch', ''), []);
  });

  test('completion <shell> prints a script; an unknown shell is a usage error', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await run(['completion', shell], false);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /aion __complete --/);
    }
    const bad = await run(['completion', 'tcsh', '--json'], false);
    assert.equal(bad.code, 2);
    assert.equal(JSON.parse(bad.stdout).error.code, 'usage');
    for (const name of ['toString', 'constructor', '__proto__']) {
      const r = await run(['completion', name], false);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: unknown shell '${name}': expected bash, zsh or fish\n`));
      assert.equal(r.stdout, '');
    }
  });

  test('runCompletion and runComplete, called directly', async () => {
    const { ctx, stdout } = commandContext({ stateDir: '/nonexistent', json: true });
    await runCompletion(ctx, { shell: 'fish' });
    assert.deepEqual(Object.keys(JSON.parse(stdout.text)), ['shell', 'script']);
    await assert.rejects(runCompletion(ctx, { shell: 'sh' }), (e: { code?: string }) => e.code === 'usage');
    const streams = { stdout: new FakeStream({ tty: false }), stderr: new FakeStream({ tty: false }) };
    await runComplete(streams, { words: ['unload', 'hello', 'a'], data });
    assert.equal(streams.stdout.text, 'aaaa11112222\n');
    const failing: CompletionData = { ...data, types: () => Promise.reject(new Error('broken state')) };
    await runComplete(streams, { words: ['route', ''], data: failing });
    assert.equal(streams.stdout.text, 'aaaa11112222\n', 'a failure prints no candidates');
    assert.equal(streams.stderr.text, '', 'and says nothing');
  });
});

/** A shell on PATH, or undefined (its tests then skip, saying so). */
function shell(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe('the scripts against a real state directory', () => {
  let work: { dir: string; cleanup: () => void };
  let v1: Packed;
  let state: string;
  let env: NodeJS.ProcessEnv;
  const scripts: Record<string, string> = {};
  before(async () => {
    work = tempDir('aion-completion-');
    v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
    state = path.join(work.dir, 'state');
    const binDir = path.join(work.dir, 'bin');
    mkdirSync(binDir);
    symlinkSync(BIN, path.join(binDir, 'aion'));
    env = { ...process.env, PATH: `${binDir}:${process.env.PATH}`, AION_STATE_DIR: state, HOME: work.dir, XDG_CONFIG_HOME: path.join(work.dir, 'config') };
    for (const sh of ['bash', 'zsh', 'fish']) {
      const r = await aionIn(['completion', sh]);
      assert.equal(r.code, 0, r.stderr);
      scripts[sh] = path.join(work.dir, `aion.${sh}`);
      writeFileSync(scripts[sh]!, r.stdout);
    }
  });
  after(() => work.cleanup());

  /** Loads v1 and starts greet-1 (once), for the tests that complete from state. */
  let seeded = false;
  async function seed(): Promise<void> {
    if (seeded) return;
    assert.equal((await aionIn(['--state-dir', state, 'load', v1.path])).code, 0);
    assert.equal((await aionIn(['--state-dir', state, 'start', 'hello', '--id', 'greet-1'])).code, 0);
    seeded = true;
  }

  test('bash: types, version prefixes and workflow ids come from the state directory at TAB time', async () => {
    const complete = (words: string[]) => {
      const script = `source '${scripts.bash}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _aion_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync('bash', ['--norc', '-c', script], { env, encoding: 'utf8' });
      return r.stdout.split('\n').filter(Boolean);
    };
    if (!seeded) assert.deepEqual(complete(['aion', 'route', '']), [], 'no state directory: nothing, and no error');
    await seed();
    assert.deepEqual(complete(['aion', 'route', '']), ['hello']);
    assert.deepEqual(complete(['aion', 'route', 'hello', '']), [v1.version.slice(0, 12)]);
    assert.deepEqual(complete(['aion', 'show', 'gr']), ['greet-1']);
    assert.deepEqual(complete(['aion', 'ver']), ['versions']);
    assert.equal(spawnSync('bash', ['-n', scripts.bash!]).status, 0, 'bash -n accepts the script');
  });

  test('an internal type (started only by its package) is never offered; its package\'s routed types are', async () => {
    const family = await packFixture('family_v1', work.dir, 'family.aion');
    const dir = path.join(work.dir, 'state-family');
    assert.equal((await aionIn(['--state-dir', dir, 'load', family.path])).code, 0);
    const streams = { stdout: new FakeStream({ tty: false }), stderr: new FakeStream({ tty: false }) };
    await runComplete(streams, { words: ['--state-dir', dir, 'start', 'fam'] });
    assert.deepEqual(streams.stdout.text.split('\n').filter(Boolean).sort(), ['family', 'family_echo']);
  });

  test('zsh: the script parses (zsh -n) and _aion offers what the state directory holds', async (t) => {
    const zsh = shell('zsh');
    if (!zsh) {
      t.skip('zsh is not installed on this machine (apt-get install zsh)');
      return;
    }
    const check = spawnSync(zsh, ['-n', scripts.zsh!], { encoding: 'utf8' });
    assert.equal(check.status, 0, `zsh -n: ${check.stderr}`);
    await seed();
    // compsys's words/CURRENT as zsh sets them, compadd and _files stubbed to print what
    // they are given: _aion itself runs as written.
    const complete = (words: string[]) => {
      const script = [
        `source '${scripts.zsh}'`,
        `compadd() { [[ "$1" == -- ]] && shift; printf 'add %s\\n' "$@"; }`,
        `_files() { print files; }`,
        `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}`,
        '_aion',
      ].join('\n');
      const r = spawnSync(zsh, ['-f', '-c', script], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean);
    };
    assert.deepEqual(complete(['aion', 'route', '']), ['add hello']);
    assert.deepEqual(complete(['aion', 'route', 'hello', '']), [`add ${v1.version.slice(0, 12)}`]);
    assert.deepEqual(complete(['aion', 'show', 'gr']), ['add greet-1']);
    assert.deepEqual(complete(['aion', 'ro']), ['add rollback', 'add route']);
    assert.deepEqual(complete(['aion', 'load', '']), ['files'], 'an archive: zsh completes file names');
  });

  test('fish: the script parses (fish -n) and complete -C offers what the state directory holds', async (t) => {
    const fish = shell('fish');
    if (!fish) {
      t.skip('fish is not installed on this machine (apt-get install fish)');
      return;
    }
    const check = spawnSync(fish, ['--no-execute', scripts.fish!], { encoding: 'utf8' });
    assert.equal(check.status, 0, `fish -n: ${check.stderr}`);
    await seed();
    const complete = (line: string) => {
      const r = spawnSync(fish, ['--no-config', '-c', `source '${scripts.fish}'; complete -C '${line}'`], { env, encoding: 'utf8', cwd: work.dir });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean);
    };
    assert.deepEqual(complete('aion route '), ['hello']);
    assert.deepEqual(complete('aion route hello '), [v1.version.slice(0, 12)]);
    assert.deepEqual(complete('aion show gr'), ['greet-1']);
    assert.deepEqual(complete('aion ro'), ['rollback', 'route']);
    // Nothing from aion (no state directory there): fish completes file names instead.
    assert.ok(complete('aion --state-dir /nonexistent route ').includes('aion.fish'));
  });
});
