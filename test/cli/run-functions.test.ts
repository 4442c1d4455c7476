// The commands' run functions called directly, as the gh pattern allows: options in, output
// on fake streams, a failure thrown as the AionError the CLI would render. Bad options are
// refused before the state directory is opened (a missing directory would say not_found) and
// change nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { aionIn, commandContext } from '../helpers/inprocess.js';
import { packFixture, type Packed } from '../helpers/packages.js';
import { runRoute } from '../../src/cli/commands/route.js';
import { runRollback } from '../../src/cli/commands/rollback.js';
import { runHistory } from '../../src/cli/commands/history.js';
import { runRuns } from '../../src/cli/commands/runs.js';
import { runShow } from '../../src/cli/commands/show.js';
import { runSignal } from '../../src/cli/commands/signal.js';
import { runTerminate } from '../../src/cli/commands/terminate.js';
import { runTop } from '../../src/cli/commands/top.js';
import { runDoctor } from '../../src/cli/commands/doctor.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let approval: Packed;
let state: string;

before(async () => {
  work = tempDir('aion-run-fns-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  approval = await packFixture('approval', work.dir, 'approval.aion');
  state = path.join(work.dir, 'state');
  for (const p of [v1, v2, approval]) assert.equal((await aionIn(['--state-dir', state, 'load', p.path])).code, 0);
});
after(() => work.cleanup());

const code = (expected: string) => (e: unknown) => (e as { code?: string }).code === expected;

/** The routed version of hello (versions is read through the CLI). */
async function routed(): Promise<string> {
  const r = await aionIn(['--state-dir', state, 'versions', 'hello', '--json']);
  return r.json.versions.find((v: { route_active: boolean }) => v.route_active).version;
}

describe('run functions, called directly', () => {
  test('runRoute and runRollback: the result document, the route moved and back', async () => {
    const { ctx, json } = commandContext({ stateDir: state, json: true });
    await runRoute(ctx, { workflowType: 'hello', version: v1.version.slice(0, 8), message: 'direct' });
    assert.deepEqual(json(), { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version });
    assert.equal(await routed(), v1.version);
    const back = commandContext({ stateDir: state, json: true });
    await runRollback(back.ctx, { workflowType: 'hello', dryRun: true });
    assert.equal(back.json().dry_run, true);
    assert.equal(await routed(), v1.version, 'a dry run changes nothing');
    const text = commandContext({ stateDir: state });
    await runRollback(text.ctx, { workflowType: 'hello' });
    assert.match(text.stdout.text, /^rolled back hello → [0-9a-f]{64} \(was [0-9a-f]{64}\)\n$/);
    assert.equal(await routed(), v2.version);
  });

  test('hostile versions and types: refused, the route unchanged', async () => {
    const before = await routed();
    for (const version of ['zz', '', '../../etc', 'ab', `${v1.version}0`, '\x1b[2J']) {
      const { ctx, stdout } = commandContext({ stateDir: state, json: true });
      await assert.rejects(runRoute(ctx, { workflowType: 'hello', version }), (e: { code?: string }) => e.code === 'usage' || e.code === 'not_found', JSON.stringify(version));
      assert.equal(stdout.text, '', 'a failure is thrown, not printed, by the run function');
    }
    const { ctx } = commandContext({ stateDir: state });
    await assert.rejects(runRoute(ctx, { workflowType: 'nope\n', version: v1.version }), code('not_found'));
    await assert.rejects(runRollback(ctx, { workflowType: 'approval' }), code('not_found'));
    assert.equal(await routed(), before);
  });

  test('bad options are usage errors before the state directory is looked at', async () => {
    const { ctx } = commandContext({ stateDir: path.join(work.dir, 'absent') });
    await assert.rejects(runHistory(ctx, { limit: '0' }), code('usage'));
    await assert.rejects(runHistory(ctx, { limit: '1e3' }), code('usage'));
    await assert.rejects(runRuns(ctx, { status: 'sleeping' }), code('usage'));
    await assert.rejects(runTop(ctx, { interval: '0.05' }), code('usage'));
    await assert.rejects(runTop(ctx, { interval: 'soon' }), code('usage'));
    await assert.rejects(runSignal(ctx, { workflowId: 'x', name: 'approve', input: '{oops' }), code('usage'));
    // And with good options, that directory is not_found (and still not created).
    await assert.rejects(runHistory(ctx, {}), code('not_found'));
    assert.equal(existsSync(path.join(work.dir, 'absent')), false);
  });

  test('runSignal, runShow, runTerminate (default reason), runRuns and the top snapshot', async () => {
    const started = await aionIn(['--state-dir', state, 'start', 'approval', '--id', 'fn-1', '--json']);
    assert.equal(started.code, 0, started.stderr);
    await aionIn(['--state-dir', state, 'start', 'approval', '--id', 'fn-2']);

    const signalled = commandContext({ stateDir: state });
    await runSignal(signalled.ctx, { workflowId: 'fn-1', name: 'approve', input: '"yes"' });
    assert.match(signalled.stdout.text, /^fn-1 completed {2}run \S+\n {2}result \{"request":null,"decision":"yes"/);

    const terminated = commandContext({ stateDir: state, json: true });
    await runTerminate(terminated.ctx, { workflowId: 'fn-2' });
    assert.equal(terminated.json().status, 'terminated');
    const shown = commandContext({ stateDir: state, json: true });
    await runShow(shown.ctx, { workflowId: 'fn-2' });
    assert.equal(shown.json().history.at(-1).reason, 'terminated by operator');
    await assert.rejects(runShow(shown.ctx, { workflowId: 'fn-3' }), code('not_found'));

    const listed = commandContext({ stateDir: state, json: true });
    await runRuns(listed.ctx, { type: 'approval', status: 'terminated' });
    assert.deepEqual(listed.json().runs.map((r: { workflow_id: string }) => r.workflow_id), ['fn-2']);

    const top = commandContext({ stateDir: state, json: true });
    await runTop(top.ctx, {});
    assert.deepEqual(Object.keys(top.json()), ['versions', 'runs']);
    assert.equal(top.json().versions.length, 3);
  });

  test('runDoctor: no problems in a healthy directory, and none in a missing one', async () => {
    const { ctx, json } = commandContext({ stateDir: state, json: true });
    await runDoctor(ctx, {});
    assert.deepEqual([json().ok, json().problems], [true, []]);
    const missing = commandContext({ stateDir: path.join(work.dir, 'never'), json: true });
    await runDoctor(missing.ctx, {});
    assert.equal(missing.json().ok, true);
    assert.equal(existsSync(path.join(work.dir, 'never')), false);
  });
});
