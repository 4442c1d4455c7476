// aion history and aion rollback, in-process (runCli on fake streams): the audit log, rollback
// semantics (back to the version routed before; twice toggles back), and its refusals —
// embedded and through a running aion serve (a process of its own).
import { mkdirSync } from 'node:fs';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir, type CliResult } from '../helpers/cli.js';
import { aionIn } from '../helpers/inprocess.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { startServe } from '../server/support.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let v3: Packed;

before(async () => {
  work = tempDir('aion-ux-rollback-');
  v1 = await packFixture('hello_v1', work.dir, 'hello-v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'hello-v2.aion');
  v3 = await packVariant('hello_v2', work.dir, 'v3');
});
after(() => work.cleanup());

/** A state directory (created empty: a read on a missing one is not_found). */
function state(name: string): string[] {
  mkdirSync(path.join(work.dir, name), { recursive: true });
  return ['--state-dir', path.join(work.dir, name)];
}

function ok(r: CliResult) {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r;
}

describe('aion rollback', () => {
  test('load v1, load v2, rollback → v1; rollback again → v2 (it toggles, like cd -)', async () => {
    const s = state('toggle');
    ok(await aionIn([...s, 'load', v1.path]));
    ok(await aionIn([...s, 'load', v2.path]));
    const back = ok(await aionIn([...s, 'rollback', 'hello', '--json']));
    assert.deepEqual(back.json, { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version });
    const routed = ok(await aionIn([...s, 'versions', 'hello', '--json'])).json.versions.filter((v: { route_active: boolean }) => v.route_active);
    assert.deepEqual(routed.map((v: { version: string }) => v.version), [v1.version]);

    const again = ok(await aionIn([...s, 'rollback', 'hello', '--json', '-m', 'v1 was worse']));
    assert.deepEqual(again.json, { workflow_type: 'hello', version: v2.version, route_active: true, previous: v1.version });

    const history = ok(await aionIn([...s, 'history', 'hello', '--json'])).json.history;
    assert.deepEqual(
      history.map((r: { operation: string; version: string; previous: string | null; message?: string }) => [r.operation, r.version, r.previous, r.message]),
      [
        ['load', v1.version, null, undefined],
        ['load', v2.version, v1.version, undefined],
        ['route', v1.version, v2.version, 'rollback'],
        ['route', v2.version, v1.version, 'v1 was worse'],
      ],
    );
  });

  test('rollback follows explicit routes and skips no-op re-loads', async () => {
    const s = state('explicit');
    ok(await aionIn([...s, 'load', v1.path]));
    ok(await aionIn([...s, 'load', v2.path]));
    ok(await aionIn([...s, 'load', v3.path]));
    ok(await aionIn([...s, 'route', 'hello', v1.version.slice(0, 8)])); // v3 → v1
    ok(await aionIn([...s, 'load', v1.path])); // re-load of the routed version: route unchanged
    const r = ok(await aionIn([...s, 'rollback', 'hello', '--json']));
    assert.equal(r.json.version, v3.version, 'back to v3, the version routed before v1');
  });

  test('--dry-run reports the target and changes nothing', async () => {
    const s = state('dry');
    ok(await aionIn([...s, 'load', v1.path]));
    ok(await aionIn([...s, 'load', v2.path]));
    const dry = ok(await aionIn([...s, 'rollback', 'hello', '--dry-run', '--json']));
    assert.deepEqual(dry.json, { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version, dry_run: true });
    const text = ok(await aionIn([...s, 'rollback', 'hello', '--dry-run']));
    assert.match(text.stdout, /^would roll back: route hello → [0-9a-f]{64} \(was [0-9a-f]{64}\) \(dry run, nothing changed\)\n$/);
    assert.equal(ok(await aionIn([...s, 'history', '--json'])).json.history.length, 2, 'no record written');
    const routed = ok(await aionIn([...s, 'versions', '--json'])).json.versions.find((v: { route_active: boolean }) => v.route_active);
    assert.equal(routed.version, v2.version);
  });

  test('no previous route: exit 3, not_found, a hint naming history and route', async () => {
    const s = state('first');
    ok(await aionIn([...s, 'load', v1.path]));
    const r = await aionIn([...s, 'rollback', 'hello']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0]!, /^error: no version was routed before [0-9a-f]{12} for 'hello': nothing to roll back to$/);
    assert.match(lines[1]!, /^hint: .*aion history hello.*aion route hello/);
    const j = await aionIn([...s, 'rollback', 'hello', '--json']);
    assert.equal(j.code, 3);
    assert.equal(j.json.error.code, 'not_found');
    assert.equal(j.json.error.target, null);
  });

  test('unknown workflow type: exit 3', async () => {
    const r = await aionIn([...state('empty'), 'rollback', 'nope', '--json']);
    assert.equal(r.code, 3);
    assert.equal(r.json.error.code, 'not_found');
    assert.match(r.json.error.message, /'nope' has no routed version/);
  });

  test('the previous version was unloaded: exit 3 saying so, the route unchanged', async () => {
    const s = state('unloaded');
    ok(await aionIn([...s, 'load', v1.path]));
    ok(await aionIn([...s, 'load', v2.path]));
    ok(await aionIn([...s, 'unload', 'hello', v1.version]));
    const r = await aionIn([...s, 'rollback', 'hello']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^error: version [0-9a-f]{12}, routed before [0-9a-f]{12} for 'hello', has been unloaded: cannot roll back to it\n/);
    assert.match(r.stderr, /\nhint: .*aion versions hello.*aion route hello/);
    const j = await aionIn([...s, 'rollback', 'hello', '--json']);
    assert.deepEqual([j.code, j.json.error.code, j.json.error.target, j.json.error.loaded], [3, 'not_found', v1.version, [v2.version]]);
    const routed = ok(await aionIn([...s, 'versions', '--json'])).json.versions.find((v: { route_active: boolean }) => v.route_active);
    assert.equal(routed.version, v2.version);
  });

  test('through a running aion serve: the same result and the same refusals', async () => {
    const dir = path.join(work.dir, 'served');
    const s = ['--state-dir', dir];
    ok(await aionIn([...s, 'load', v1.path]));
    const served = await startServe(dir);
    try {
      ok(await aionIn([...s, 'load', v2.path]));
      const back = ok(await aionIn([...s, 'rollback', 'hello', '--json']));
      assert.deepEqual(back.json, { workflow_type: 'hello', version: v1.version, route_active: true, previous: v2.version });
      const h = ok(await aionIn([...s, 'history', '--json', '--limit', '1'])).json.history;
      assert.deepEqual([h.length, h[0].operation, h[0].message, h[0].pid], [1, 'route', 'rollback', served.pid]);
      ok(await aionIn([...s, 'rollback', 'hello']));
      ok(await aionIn([...s, 'route', 'hello', v1.version]));
      ok(await aionIn([...s, 'unload', 'hello', v2.version]));
      const refused = await aionIn([...s, 'rollback', 'hello', '--json']);
      assert.deepEqual([refused.code, refused.json.error.code, refused.json.error.target], [3, 'not_found', v2.version]);
    } finally {
      await served.stop();
    }
  });
});

describe('aion history', () => {
  test('text: newest last, full versions and RFC 3339 times when piped; --limit keeps the newest', async () => {
    const s = state('history');
    ok(await aionIn([...s, 'load', v1.path, '-m', 'first']));
    ok(await aionIn([...s, 'load', v2.path]));
    ok(await aionIn([...s, 'route', 'hello', v1.version]));
    const r = ok(await aionIn([...s, 'history']));
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME +USER +OPERATION +TYPE +VERSION +PREVIOUS +MESSAGE$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z +\\S+ +load +hello +${v1.version} +- +first$`));
    assert.match(lines[3]!, new RegExp(`route +hello +${v1.version} +${v2.version}$`));
    const limited = ok(await aionIn([...s, 'history', 'hello', '--limit', '2', '--json']));
    assert.deepEqual(limited.json.history.map((h: { operation: string }) => h.operation), ['load', 'route']);
    for (const field of ['at', 'user', 'pid', 'operation', 'workflow_type', 'version', 'previous']) assert.ok(field in limited.json.history[0], field);
  });

  test('empty history is an empty list; a bad --limit is a usage error', async () => {
    const empty = ok(await aionIn([...state('nohistory'), 'history', '--json']));
    assert.deepEqual(empty.json, { history: [] });
    assert.equal(ok(await aionIn([...state('nohistory'), 'history'])).stdout, '');
    const bad = await aionIn([...state('nohistory'), 'history', '--limit', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --limit must be a whole number ≥ 1, got '0'\nhint: see 'aion history --help'\n$/);
  });
});
