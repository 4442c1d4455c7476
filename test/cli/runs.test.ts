// Runs through the CLI: the issue's end-to-end scenario and the run commands' errors run
// in-process (runCli on fake streams); a kill -9 in the middle of a run and serve
// --until-idle need processes of their own, through bin/aion.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, BIN, tempDir } from '../helpers/cli.js';
import { aionIn } from '../helpers/inprocess.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { packProject } from '../../src/package/index.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let sleeper: Packed;
let slow: Packed;

before(async () => {
  work = tempDir();
  v1 = await packFixture('approval', work.dir, 'approval-v1.aion');
  v2 = await packVariant('approval', work.dir, 'approval-v2');
  sleeper = await packFixture('sleeper', work.dir);
  const dir = path.join(work.dir, 'slow');
  mkdirSync(path.join(dir, 'modules'), { recursive: true });
  writeFileSync(path.join(dir, 'workflow.json'), JSON.stringify({ entry_module: 'slow', entry_function: 'run', timeout_seconds: 30, activities: ['first', 'crawl'] }));
  writeFileSync(
    path.join(dir, 'modules', 'slow.js'),
    `exports.run = async (ctx) => {
       const a = await ctx.activity('first', null);
       const b = await ctx.activity('crawl', null);
       return { a, b };
     };
     exports.activities = {
       first: async () => 'one',
       crawl: async () => { console.error('CRAWL-STARTED'); await new Promise((r) => setTimeout(r, 1500)); return 'two'; },
     };`,
  );
  const packed = await packProject(dir, { out: path.join(work.dir, 'slow.aion') });
  slow = { path: packed.path, version: packed.pkg.version, type: 'slow' };
});
after(() => work.cleanup());

describe('runs through the CLI', () => {
  test('a parked run stays on v1 across a deploy, pins it, and completes with v1', async () => {
    const s = ['--state-dir', path.join(work.dir, 'scenario')];
    assert.equal((await aionIn([...s, 'load', v1.path])).code, 0);
    const parked = await aionIn([...s, 'start', 'approval', '--id', 'req-1', '--input', '{"amount":5}', '--json']);
    assert.equal(parked.code, 0, parked.stderr);
    assert.deepEqual(Object.keys(parked.json).sort(), ['run_id', 'status', 'version', 'workflow_id', 'workflow_type']);
    assert.deepEqual([parked.json.status, parked.json.version], ['running', v1.version]);

    assert.equal((await aionIn([...s, 'load', v2.path])).code, 0);
    const fresh = await aionIn([...s, 'start', 'approval', '--id', 'req-2', '--json']);
    assert.equal(fresh.json.version, v2.version);

    const refused = await aionIn([...s, 'unload', 'approval', v1.version, '--json']);
    assert.equal(refused.code, 4);
    assert.deepEqual(refused.json.error.pinned_by, { kind: 'recoverable_run', workflow_id: 'req-1', run_id: parked.json.run_id });

    const signalled = await aionIn([...s, 'signal', 'req-1', 'approve', '--input', '"yes"', '--json']);
    assert.equal(signalled.code, 0, signalled.stderr);
    assert.deepEqual(signalled.json, { workflow_id: 'req-1', run_id: parked.json.run_id, status: 'completed' });

    const shown = await aionIn([...s, 'show', 'req-1', '--json']);
    assert.equal(shown.json.version, v1.version);
    assert.deepEqual(shown.json.result, { request: { amount: 5 }, decision: 'yes', version: v1.version });
    assert.equal(shown.json.error, null);
    assert.deepEqual(shown.json.history.map((e: { type: string }) => e.type), ['WorkflowStarted', 'SignalReceived', 'WorkflowCompleted']);
    assert.equal(shown.json.history[0].package_version, v1.version);

    await aionIn([...s, 'signal', 'req-2', 'approve', '--input', '"ok"']);
    assert.equal((await aionIn([...s, 'show', 'req-2', '--json'])).json.result.version, v2.version);

    const unloaded = await aionIn([...s, 'unload', 'approval', v1.version, '--json']);
    assert.equal(unloaded.code, 0, unloaded.stdout);

    const listed = await aionIn([...s, 'runs', '--type', 'approval', '--json']);
    assert.deepEqual(listed.json.runs.map((r: { workflow_id: string; status: string }) => [r.workflow_id, r.status]), [['req-1', 'completed'], ['req-2', 'completed']]);
    const text = await aionIn([...s, 'show', 'req-1']);
    assert.match(text.stdout, /SignalReceived/);
    assert.doesNotMatch(text.stdout, /\x1b\[/);
  });

  test('text output of start and signal says what a finished run returned or why it failed', async () => {
    const s = ['--state-dir', path.join(work.dir, 'text')];
    await aionIn([...s, 'load', v1.path]);
    const parked = await aionIn([...s, 'start', 'approval', '--id', 't-1']);
    assert.equal(parked.code, 0);
    assert.match(parked.stdout, /^t-1 running {2}approval [0-9a-f]{64} {2}run \S+\n$/, 'a running run has no result line');
    const done = await aionIn([...s, 'signal', 't-1', 'approve', '--input', '"yes"']);
    assert.equal(done.code, 0);
    assert.match(done.stdout, /^t-1 completed {2}run \S+\n {2}result \{"request":null,"decision":"yes","version":"[0-9a-f]{64}"\}\n$/);
    const json = await aionIn([...s, 'start', 'approval', '--id', 't-2', '--json']);
    assert.deepEqual(Object.keys(json.json).sort(), ['run_id', 'status', 'version', 'workflow_id', 'workflow_type'], '--json keeps the contract shape');
  });

  test('bad run arguments are usage errors; unknown ids are not_found', async () => {
    const s = ['--state-dir', path.join(work.dir, 'bad-args')];
    await aionIn([...s, 'load', v1.path]);
    const badJson = await aionIn([...s, 'start', 'approval', '--input', '{oops', '--json']);
    assert.equal(badJson.code, 2);
    assert.match(badJson.json.error.message, /--input is not valid JSON/);
    assert.equal((await aionIn([...s, 'runs', '--status', 'sleeping'])).code, 2);
    assert.equal((await aionIn([...s, 'signal', 'ghost', 'approve'])).code, 3);
    assert.equal((await aionIn([...s, 'show', 'ghost', '--json'])).json.error.code, 'not_found');
    assert.equal((await aionIn([...s, 'start', 'approval', '--id', 'dup'])).code, 0);
    const dup = await aionIn([...s, 'start', 'approval', '--id', 'dup', '--json']);
    assert.equal(dup.code, 11);
    assert.equal(dup.json.error.code, 'conflict');
  });

  test('serve --until-idle completes runs that wait only on timers', async () => {
    const s = ['--state-dir', path.join(work.dir, 'idle')];
    await aionIn([...s, 'load', sleeper.path]);
    assert.equal((await aionIn([...s, 'start', 'sleeper', '--id', 'nap'])).code, 0);
    assert.equal((await aionIn([...s, 'show', 'nap', '--json'])).json.status, 'running');
    const served = aion([...s, 'serve', '--until-idle', '--json']);
    assert.equal(served.code, 0, served.stderr);
    assert.equal(served.json.still_running, 0);
    assert.ok(served.json.timers_fired >= 1);
    assert.equal((await aionIn([...s, 'show', 'nap', '--json'])).json.status, 'completed');
  });

  test('kill -9 in the middle of an activity loses no recorded step; the run resumes', async () => {
    const state = path.join(work.dir, 'killed');
    const s = ['--state-dir', state];
    assert.equal((await aionIn([...s, 'load', slow.path])).code, 0);
    const child = spawn(process.execPath, [BIN, ...s, 'start', 'slow', '--id', 'k'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('CRAWL-STARTED')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`start exited (${code}) before the activity began: ${err}`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const after = await aionIn([...s, 'show', 'k', '--json']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.json.status, 'running');
    assert.deepEqual(after.json.history.map((e: { type: string }) => e.type), ['WorkflowStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled']);
    const pinned = await aionIn([...s, 'versions', 'slow', '--json']);
    assert.equal(pinned.json.versions[0].pins.recoverable, 1);

    const served = aion([...s, 'serve', '--until-idle', '--json']);
    assert.equal(served.code, 0, served.stderr);
    const done = await aionIn([...s, 'show', 'k', '--json']);
    assert.equal(done.json.status, 'completed');
    assert.deepEqual(done.json.result, { a: 'one', b: 'two' });
    const types = done.json.history.map((e: { type: string }) => e.type);
    assert.deepEqual(types.slice(0, 4), ['WorkflowStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled'], 'the recorded steps are kept, not redone');
    assert.equal(types.filter((t: string) => t === 'ActivityCompleted').length, 2);
  });
});
