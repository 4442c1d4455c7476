// Packages with several workflow types (additional_workflows, internal types) and input/output
// schemas, through bin/aion: the archive is the unit of load and unload; a child of an internal
// type stays on its parent's version; a start whose input breaks the schema exits 2 and records
// nothing; output that breaks its schema fails the run with output_schema.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, tempDir } from '../helpers/cli.js';
import { editConfig, packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { buildPackage } from '../helpers/malformed.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;

before(async () => {
  work = tempDir('aion-packages-');
  v1 = await packFixture('family_v1', work.dir);
  v2 = await packFixture('family_v2', work.dir);
});
after(() => work.cleanup());

const TYPES = ['family', 'family_child', 'family_echo'];

function state(name: string): (args: string[], env?: NodeJS.ProcessEnv) => ReturnType<typeof aion> {
  const dir = path.join(work.dir, name);
  return (args, env) => aion(['--state-dir', dir, ...args, '--json'], { env });
}

describe('a package with several workflow types', () => {
  test('one load registers every type in one deploy record; the internal child of a v1 parent runs on v1 after v2 is deployed', () => {
    const a = state('child-version');
    const l1 = a(['load', v1.path]);
    assert.equal(l1.code, 0, l1.stderr);
    assert.deepEqual(l1.json.workflow_types, TYPES);
    const started = a(['start', 'family', '--id', 'p1', '--input', '{"name":"ada","wait":true,"echo":true}']);
    assert.deepEqual([started.code, started.json.version, started.json.status], [0, v1.version, 'running'], started.stderr);
    const l2 = a(['load', v2.path]);
    assert.deepEqual([l2.code, l2.json.route_changed, l2.json.previous], [0, true, v1.version]);

    // One row per type, each naming its package's types; the internal one is never routed.
    const versions = a(['versions']).json.versions;
    assert.deepEqual(versions.map((v: any) => [v.workflow_type, v.version, v.state, v.internal]), [
      ['family', v1.version, 'draining', false],
      ['family', v2.version, 'routed', false],
      ['family_child', v1.version, 'drained', true],
      ['family_child', v2.version, 'drained', true],
      ['family_echo', v1.version, 'drained', false],
      ['family_echo', v2.version, 'routed', false],
    ]);
    for (const v of versions) assert.deepEqual([v.package_types, v.source], [TYPES, 'loaded']);

    const signalled = a(['signal', 'p1', 'go']);
    assert.deepEqual([signalled.code, signalled.json.status], [0, 'completed'], signalled.stderr);
    const shown = a(['show', 'p1']).json;
    assert.deepEqual(shown.result, { parent: 'v1', child: { generation: 'v1', version: v1.version, greeting: 'hi ada' }, echo: { echo: 'ada' } });
    const child = a(['show', 'p1-child']).json;
    assert.deepEqual([child.workflow_type, child.version, child.status], ['family_child', v1.version, 'completed']);
    // A child of a type of the same package that is not internal takes its routed version: v2.
    const echo = a(['show', 'p1-echo']).json;
    assert.deepEqual([echo.workflow_type, echo.version, echo.status], ['family_echo', v2.version, 'completed']);

    // A parent started now is on v2, and so is its child.
    const fresh = a(['start', 'family', '--id', 'p2', '--input', '{"name":"bo"}']);
    assert.equal(fresh.json.version, v2.version);
    assert.equal(a(['show', 'p2']).json.result.child.generation, 'v2');

    // The history holds one record per load, naming every type.
    const history = a(['history']).json.history;
    assert.deepEqual(history.map((r: any) => [r.operation, r.workflow_type, r.version, r.workflow_types]), [
      ['load', 'family', v1.version, TYPES],
      ['load', 'family', v2.version, TYPES],
    ]);
    assert.deepEqual(a(['history', 'family_echo']).json.history.length, 2, 'each type finds the package record in its own history');
    const text = aion(['--state-dir', path.join(work.dir, 'child-version'), 'history', 'family_echo']);
    assert.match(text.stdout, /load +family \(\+family_child, family_echo\)/, 'the text names every type of the package');
    // Rollback of a secondary type follows the package record.
    const back = a(['rollback', 'family_echo']);
    assert.deepEqual([back.code, back.json.version, back.json.previous], [0, v1.version, v2.version], back.stderr);
  });

  test('an internal type cannot be started, routed or ramped', () => {
    const a = state('internal');
    assert.equal(a(['load', v1.path]).code, 0);
    const start = a(['start', 'family_child', '--input', '{"name":"x"}']);
    assert.equal(start.code, 3);
    assert.equal(start.json.error.code, 'not_found');
    assert.equal(start.json.error.internal, true);
    assert.match(start.json.error.message, /internal to package 'family'/);
    const route = a(['route', 'family_child', v1.version]);
    assert.equal(route.code, 2);
    assert.match(route.json.error.message, /internal to package 'family'/);
    assert.equal(a(['load', v2.path, '--no-route']).code, 0);
    const ramp = a(['ramp', 'family_child', v2.version, '10']);
    assert.equal(ramp.code, 2);
    assert.equal(a(['runs']).json.runs.length, 0, 'nothing was recorded');
  });

  test('unload removes the whole package version and is refused while any of its types is routed or pinned', () => {
    const a = state('unload');
    assert.equal(a(['load', v1.path]).code, 0);
    // The parent waits on its child, which waits for `release`: both types pin v1.
    assert.equal(a(['start', 'family', '--id', 'h1', '--input', '{"name":"x","hold":true}']).json.status, 'running');
    const routed = a(['unload', 'family_child', v1.version]);
    assert.equal(routed.code, 5);
    assert.deepEqual([routed.json.error.code, routed.json.error.workflow_type], ['route_active', 'family']);
    assert.equal(a(['load', v2.path]).code, 0);

    const pinned = a(['unload', 'family_echo', v1.version]);
    assert.equal(pinned.code, 4, pinned.stdout);
    assert.equal(pinned.json.error.code, 'version_pinned');
    assert.deepEqual(pinned.json.error.holders.map((h: any) => [h.kind, h.workflow_type, h.workflow_id]).sort(), [
      ['recoverable_run', 'family', 'h1'],
      ['recoverable_run', 'family_child', 'h1-child'],
    ]);
    assert.equal(pinned.json.error.holders_total, 2);

    // With the parent gone, the child alone still pins the package.
    assert.equal(a(['terminate', 'h1']).code, 0);
    const child = a(['unload', 'family', v1.version]);
    assert.equal(child.code, 4);
    assert.deepEqual(child.json.error.holders.map((h: any) => [h.workflow_type, h.workflow_id]), [['family_child', 'h1-child']]);
    assert.equal(a(['versions']).json.versions.length, 6, 'refusals change nothing');

    assert.equal(a(['signal', 'h1-child', 'release']).json.status, 'completed');
    const done = a(['unload', 'family_child', v1.version.slice(0, 8)]);
    assert.deepEqual([done.code, done.json.unloaded], [0, true], done.stdout);
    assert.deepEqual(a(['versions']).json.versions.map((v: any) => [v.workflow_type, v.version]), TYPES.map((t) => [t, v2.version]));
    const last = a(['history']).json.history.at(-1);
    assert.deepEqual([last.operation, last.version, last.workflow_types], ['unload', v1.version, TYPES]);
  });

  test('prune unloads a package version only as a whole', () => {
    const a = state('prune');
    for (const p of [v1, v2]) assert.equal(a(['load', p.path]).code, 0);
    // v1 of family_child alone is drained and not kept, but its siblings are rollback targets.
    const typeOnly = a(['prune', 'family_child', '--keep', '0']);
    assert.equal(typeOnly.code, 0, typeOnly.stderr);
    assert.deepEqual(typeOnly.json.unloaded, []);
    assert.deepEqual(typeOnly.json.kept.find((k: any) => k.version === v1.version), { workflow_type: 'family_child', version: v1.version, reason: 'rollback_target' });
    assert.equal(a(['versions']).json.versions.length, 6);
  });

  test('manifests whose extra entries lie are refused by pack, inspect and load, changing nothing', async () => {
    const a = state('lies');
    // An additional type naming a function its module does not export.
    // (The in-process packer has no code check; bin/aion pack runs load's.)
    await packVariant('family_v1', work.dir, 'lie-function', (dir) =>
      editConfig(dir, { additional_workflows: [{ workflow_type: 'family_child', entry_module: 'family@child', entry_function: 'nope', internal: true }] }),
    );
    const dir = path.join(work.dir, 'lie-function');
    const packed = aion(['pack', dir, '--out', path.join(work.dir, 'lie.aion'), '--json']);
    assert.equal(packed.code, 6, packed.stdout);
    assert.match(packed.json.error.message, /nope/);
    // The same lie in a hand-built archive (no packer in the way): inspect and load refuse it.
    const lying = path.join(work.dir, 'lying.aion');
    writeFileSync(
      lying,
      buildPackage({
        modules: [['hello', 'exports.run = async () => 1;\n'], ['hello@kid', 'exports.go = async () => 2;\n']],
        manifest: (m) => void (m.additional_workflows = [{ workflow_type: 'kid', entry_module: 'hello@kid', entry_function: 'run' }]),
      }),
    );
    for (const command of ['inspect', 'load']) {
      const r = a([command, lying]);
      assert.equal(r.code, 6, `${command}: ${r.stdout}`);
      assert.match(r.json.error.message, /hello@kid.*run|run.*hello@kid/);
    }
    const absent = path.join(work.dir, 'absent.aion');
    writeFileSync(absent, buildPackage({ manifest: (m) => void (m.additional_workflows = [{ workflow_type: 'kid', entry_module: 'hello@ghost', entry_function: 'run' }]) }));
    const r = a(['load', absent]);
    assert.equal(r.code, 6);
    assert.match(r.json.error.message, /entry module "hello@ghost".*missing from the archive/);
    const none = a(['versions']);
    assert.ok(none.code === 3 || none.json.versions.length === 0, 'nothing was loaded');
  });
});

describe('input and output schemas', () => {
  test('a start whose input breaks the schema exits 2 with schema_errors and records nothing', () => {
    const a = state('schemas');
    assert.equal(a(['load', v1.path]).code, 0);
    const bad = a(['start', 'family', '--id', 's1', '--input', '{"name":7,"extra":true}']);
    assert.equal(bad.code, 2, bad.stdout);
    assert.equal(bad.json.error.code, 'usage');
    assert.deepEqual(bad.json.error.schema_errors, [
      { path: '', message: 'must NOT have additional properties ("extra")' },
      { path: '/name', message: 'must be string' },
    ]);
    const missing = a(['start', 'family', '--id', 's1']);
    assert.equal(missing.code, 2, 'null input breaks a schema that wants an object');
    assert.equal(a(['runs']).json.runs.length, 0);
    assert.equal(a(['show', 's1']).code, 3, 'no run was recorded');
    assert.equal(a(['versions']).json.versions[0].pins.recoverable, 0);
    const text = aion(['--state-dir', path.join(work.dir, 'schemas'), 'start', 'family', '--input', '{}']);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /input does not match the input schema of 'family'.*must have required property 'name'/);
    const good = a(['start', 'family', '--id', 's1', '--input', '{"name":"ok"}']);
    assert.deepEqual([good.code, good.json.status], [0, 'completed'], good.stderr);
  });

  test('output that breaks the output schema fails the run with output_schema', () => {
    const a = state('output');
    assert.equal(a(['load', v1.path]).code, 0);
    const ok = a(['start', 'family_echo', '--id', 'e1', '--input', '"text"']);
    assert.equal(ok.json.status, 'completed');
    const broken = a(['start', 'family_echo', '--id', 'e2', '--input', '5']);
    assert.deepEqual([broken.code, broken.json.status], [0, 'failed']);
    const shown = a(['show', 'e2']).json;
    assert.equal(shown.error.code, 'output_schema');
    assert.deepEqual(shown.error.schema_errors, [{ path: '/echo', message: 'must be string' }]);
    assert.equal(shown.history.at(-1).type, 'WorkflowFailed');
  });

  test('inspect shows every type and its schemas; a schema that is not a schema is invalid_package at pack, inspect and load', async () => {
    const shown = aion(['inspect', v1.path, '--json']).json;
    assert.deepEqual(shown.workflow_types.map((t: any) => [t.workflow_type, t.internal, t.input_schema !== null, t.output_schema !== null]), [
      ['family', false, true, false],
      ['family_child', true, false, false],
      ['family_echo', false, false, true],
    ]);
    assert.deepEqual(shown.input_schema.required, ['name']);
    const dir = path.join(work.dir, 'bad-schema');
    await packVariant('family_v1', work.dir, 'bad-schema', (d) => editConfig(d, { output_schema: { type: 12 } }));
    const packed = aion(['pack', dir, '--out', path.join(work.dir, 'bad-schema-cli.aion'), '--json']);
    assert.equal(packed.code, 6, packed.stdout);
    assert.match(packed.json.error.message, /field 'output_schema' is not a valid JSON Schema/);
    const archive = path.join(work.dir, 'bad-schema.aion');
    writeFileSync(archive, buildPackage({ manifest: (m) => void (m.input_schema = { $ref: 'https://example.com/remote.json' }) }));
    for (const command of ['inspect', 'load']) {
      const r = aion(['--state-dir', path.join(work.dir, 'bad-schema-state'), command, archive, '--json']);
      assert.equal(r.code, 6, `${command}: ${r.stdout}`);
      assert.match(r.json.error.message, /field 'input_schema' is not a valid JSON Schema/);
    }
  });
});
