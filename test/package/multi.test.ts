// In-process: the manifest rules of packages with several workflow types and schemas (one
// definition of a type's spec and its defaults), the schema compiler and its per-version
// cache, the limit option parser, and `runInspect` on fake streams.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { checkSchemas, packProject, parseWorkflowConfig, readPackage, SchemaCache, serializeManifest, validateManifest, workflowSpecs, type Manifest } from '../../src/package/index.js';
import { resolveLimitOptions } from '../../src/cli/limits.js';
import { runInspect } from '../../src/cli/commands/inspect.js';
import { Output } from '../../src/cli/output.js';
import { FIXTURES, tempDir } from '../helpers/cli.js';
import { buildPackage } from '../helpers/malformed.js';
import { terminal } from '../ux/support.js';

const invalid = (pattern: RegExp) => (error: unknown) => isAionError(error, 'invalid_package') && pattern.test((error as Error).message);

function manifestWith(extra: Partial<Manifest>): Manifest {
  return { ...readPackage(buildPackage()).manifest, ...extra };
}

describe('several workflow types in a manifest', () => {
  test('workflowSpecs applies the defaults once: no activities, the package timeout, not internal', () => {
    const m = manifestWith({ timeout_seconds: 45, additional_workflows: [{ workflow_type: 'kid', entry_module: 'hello', entry_function: 'kid', internal: true }, { workflow_type: 'pal', entry_module: 'hello@util', entry_function: 'pal', activities: ['a'], timeout_seconds: 5 }] });
    assert.deepEqual(workflowSpecs(m).map((s) => [s.workflow_type, s.entry_module, s.entry_function, s.activities, s.timeout_seconds, s.internal]), [
      ['hello', 'hello', 'run', [], 45, false],
      ['kid', 'hello', 'kid', [], 45, true],
      ['pal', 'hello@util', 'pal', ['a'], 5, false],
    ]);
  });

  test('serialization round-trips and keeps absent fields absent', () => {
    const m = manifestWith({ input_schema: { type: 'object' }, output_schema: true, additional_workflows: [{ workflow_type: 'kid', entry_module: 'hello', entry_function: 'kid', output_schema: false }] });
    const text = serializeManifest(m);
    assert.deepEqual(validateManifest(JSON.parse(text)), m);
    assert.deepEqual(Object.keys(JSON.parse(text).additional_workflows[0]), ['workflow_type', 'entry_module', 'entry_function', 'output_schema']);
    assert.equal(serializeManifest(m), text, 'deterministic');
  });

  test('workflow.json takes the same fields under the same rules', () => {
    const file = 'p/workflow.json';
    const base = { entry_module: 'p', entry_function: 'run', timeout_seconds: 1, activities: [] };
    const ok = parseWorkflowConfig(JSON.stringify({ ...base, input_schema: {}, additional_workflows: [{ workflow_type: 'p_kid', entry_module: 'p', entry_function: 'kid' }] }), file);
    assert.deepEqual(ok.additional_workflows, [{ workflow_type: 'p_kid', entry_module: 'p', entry_function: 'kid' }]);
    assert.throws(() => parseWorkflowConfig(JSON.stringify({ ...base, additional_workflows: [{ workflow_type: 'p', entry_module: 'p', entry_function: 'kid' }] }), file), invalid(/p\/workflow\.json: field 'additional_workflows\[0\]\.workflow_type' duplicates workflow type "p"/));
    assert.throws(() => parseWorkflowConfig(JSON.stringify({ ...base, output_schema: [1] }), file), invalid(/field 'output_schema' must be a JSON Schema/));
  });

  test('pack refuses a project whose additional entry module does not exist', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { cpSync, writeFileSync, readFileSync } = await import('node:fs');
      cpSync(path.join(FIXTURES, 'family_v1'), path.join(dir, 'p'), { recursive: true });
      const cfg = JSON.parse(readFileSync(path.join(dir, 'p/workflow.json'), 'utf8'));
      cfg.additional_workflows[0].entry_module = 'family@ghost';
      writeFileSync(path.join(dir, 'p/workflow.json'), JSON.stringify(cfg));
      await assert.rejects(packProject(path.join(dir, 'p'), { out: path.join(dir, 'x.aion') }), invalid(/additional_workflows\[0\]\.entry_module' names "family@ghost", but modules\/family\/ghost\.js does not exist/));
    } finally {
      cleanup();
    }
  });
});

describe('schemas', () => {
  test('checkSchemas names the field of a schema that is not a draft 2020-12 schema', async () => {
    await checkSchemas(manifestWith({ input_schema: { type: 'object', properties: { a: { type: 'string' } } } }));
    await assert.rejects(checkSchemas(manifestWith({ input_schema: { type: 'nothing' } })), invalid(/field 'input_schema' is not a valid JSON Schema/));
    await assert.rejects(
      checkSchemas(manifestWith({ additional_workflows: [{ workflow_type: 'kid', entry_module: 'hello', entry_function: 'kid', output_schema: { minimum: 'x' } }] })),
      invalid(/field 'additional_workflows\[0\]\.output_schema' is not a valid JSON Schema/),
    );
    await assert.rejects(checkSchemas(manifestWith({ input_schema: { $ref: 'other.json' } })), invalid(/input_schema/), 'a reference to a schema it does not hold: nothing is fetched');
  });

  test('the cache compiles a schema once per version and type, and forgets a dropped version', async () => {
    const m = manifestWith({ input_schema: { type: 'string' } });
    const cache = new SchemaCache();
    assert.equal(cache.validator('v1', m, 'hello', 'output'), undefined, 'no output schema: nothing to validate');
    const first = cache.validator('v1', m, 'hello', 'input')!;
    assert.equal(cache.validator('v1', m, 'hello', 'input'), first, 'compiled once');
    assert.notEqual(cache.validator('v2', m, 'hello', 'input'), first, 'per version');
    assert.deepEqual((await first)('text'), []);
    assert.deepEqual((await first)(5), [{ path: '', message: 'must be string' }]);
    cache.drop('v1');
    assert.notEqual(cache.validator('v1', m, 'hello', 'input'), first);
  });
});

describe('limit options', () => {
  test('whole numbers with K, M or G; the flag wins over the environment', () => {
    assert.deepEqual(resolveLimitOptions({ maxArchiveBytes: '2K', maxInflatedBytes: '3m', maxEntries: '7' }, {}), { maxArchiveBytes: 2048, maxInflatedBytes: 3 * 1024 ** 2, maxEntries: 7 });
    assert.deepEqual(resolveLimitOptions({}, { AION_MAX_ARCHIVE_BYTES: '1G', AION_MAX_ENTRIES: '' }), { maxArchiveBytes: 1024 ** 3 });
    assert.deepEqual(resolveLimitOptions({ maxEntries: '9' }, { AION_MAX_ENTRIES: '1' }), { maxEntries: 9 });
    for (const bad of ['0', '-1', '1.5', '1T', 'x', '']) {
      assert.throws(() => resolveLimitOptions({ maxEntries: bad }, {}), (e: unknown) => isAionError(e, 'usage') && /--max-entries must be a whole number/.test((e as Error).message), bad);
    }
  });
});

describe('runInspect', () => {
  test('shows every type with its schemas, on fake streams', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { path: archive } = await packProject(path.join(FIXTURES, 'family_v1'), { out: path.join(dir, 'f.aion') });
      const streams = terminal(false);
      await runInspect({ globals: { stateDir: dir, json: true, color: false, lockTimeoutMs: 0 }, out: new Output(streams, { json: true, color: false }) }, { archive });
      const json = JSON.parse(streams.stdout.text);
      assert.deepEqual(json.workflow_types.map((t: { workflow_type: string; internal: boolean }) => [t.workflow_type, t.internal]), [['family', false], ['family_child', true], ['family_echo', false]]);
      assert.deepEqual(json.workflow_types[2].output_schema.required, ['echo']);
      const text = terminal(false);
      await assert.rejects(
        runInspect({ globals: { stateDir: dir, json: false, color: false, lockTimeoutMs: 0 }, out: new Output(text, { json: false, color: false }) }, { archive, maxEntries: '2' }),
        invalid(/entries/),
        'the limit option refuses the 4-entry archive',
      );
    } finally {
      cleanup();
    }
  });
});
