// Shell completion: the candidate rules in-process (commands, options, types, version
// prefixes, workflow ids, option values), and the bash script driving bin/aion against a
// real state directory, read at completion time.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { buildProgram } from '../../src/cli/program.js';
import { candidates, type CompletionData } from '../../src/cli/commands/complete.js';
import { aion, BIN, tempDir } from '../helpers/cli.js';
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
  });
});

describe('the bash script against a real state directory', () => {
  let work: { dir: string; cleanup: () => void };
  let v1: Packed;
  before(async () => {
    work = tempDir('aion-completion-');
    v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  });
  after(() => work.cleanup());

  test('types, version prefixes and workflow ids come from the state directory at TAB time', () => {
    const state = path.join(work.dir, 'state');
    const binDir = path.join(work.dir, 'bin');
    spawnSync('mkdir', ['-p', binDir]);
    spawnSync('ln', ['-s', BIN, path.join(binDir, 'aion')]);
    const complete = (words: string[]) => {
      const script = `eval "$(aion completion bash)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _aion_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync('bash', ['--norc', '-c', script], { env: { ...process.env, PATH: `${binDir}:${process.env.PATH}`, AION_STATE_DIR: state }, encoding: 'utf8' });
      return r.stdout.split('\n').filter(Boolean);
    };
    assert.deepEqual(complete(['aion', 'route', '']), [], 'no state directory: nothing, and no error');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'start', 'hello', '--id', 'greet-1']).code, 0);
    assert.deepEqual(complete(['aion', 'route', '']), ['hello']);
    assert.deepEqual(complete(['aion', 'route', 'hello', '']), [v1.version.slice(0, 12)]);
    assert.deepEqual(complete(['aion', 'show', 'gr']), ['greet-1']);
    assert.deepEqual(complete(['aion', 'ver']), ['versions']);
  });
});
