// `aion pack` and `aion inspect` through bin/aion, as an operator's shell runs them.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, FIXTURES, ROOT, tempDir } from '../helpers/cli.js';
import { malformedArchives } from '../helpers/malformed.js';

const ANSI = /\u001b\[/;
let scratch: string;
let cleanup: () => void;

before(() => {
  ({ dir: scratch, cleanup } = tempDir());
});
after(() => cleanup());

describe('aion pack', () => {
  test('--json prints exactly {workflow_type, version, output, modules}', () => {
    const out = path.join(scratch, 'hello.aion');
    const r = aion(['pack', path.join(FIXTURES, 'hello_v1'), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(r.json), ['workflow_type', 'version', 'output', 'modules']);
    assert.equal(r.json.workflow_type, 'hello');
    assert.match(r.json.version, /^[0-9a-f]{64}$/);
    assert.equal(r.json.output, out);
    assert.equal(r.json.modules, 2);
    assert.equal(r.stderr, '');
  });

  test('is reproducible across invocations', () => {
    const a = path.join(scratch, 'r1.aion');
    const b = path.join(scratch, 'r2.aion');
    const ra = aion(['pack', 'fixtures/order', '--out', a, '--json']);
    const rb = aion(['--json', 'pack', 'fixtures/order', '--out', b]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(ra.json.version, rb.json.version);
    assert.equal(Buffer.compare(readFileSync(a), readFileSync(b)), 0);
  });

  test('--out is relative to the current directory; project_dir defaults to .', () => {
    const project = path.join(scratch, 'sleeper');
    cpSync(path.join(FIXTURES, 'sleeper'), project, { recursive: true });
    const r = aion(['pack', '--out', 'here.aion', '--json'], { cwd: project });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.output, path.join(project, 'here.aion'));
    const d = aion(['pack', '--json'], { cwd: project });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.json.output, path.join(project, 'sleeper.aion'));
  });

  test('text output is one plain line when piped', () => {
    const out = path.join(scratch, 'text.aion');
    const r = aion(['pack', path.join(FIXTURES, 'hello_v2'), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    // Piped: the full version, like every other command (12 characters only on a terminal).
    assert.match(r.stdout, /^packed hello [0-9a-f]{64} → .*text\.aion \(1 module\)\n$/);
    assert.doesNotMatch(r.stdout + r.stderr, ANSI);
  });

  test('a missing project directory exits 2 with a usage error', () => {
    const r = aion(['pack', path.join(scratch, 'nope')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: no such project directory: .*nope\n/);
    assert.equal(r.stdout, '');
  });

  test('--json failure is one error document on stdout', () => {
    const r = aion(['pack', path.join(scratch, 'nope'), '--json']);
    assert.equal(r.code, 2);
    assert.deepEqual(Object.keys(r.json), ['error']);
    assert.equal(r.json.error.code, 'usage');
    assert.match(r.json.error.message, /no such project directory/);
  });

  test('an invalid workflow.json exits 6 naming the file and field', () => {
    const project = path.join(scratch, 'broken');
    cpSync(path.join(FIXTURES, 'order'), project, { recursive: true });
    writeFileSync(path.join(project, 'workflow.json'), JSON.stringify({ entry_module: 'order', entry_function: 'run', timeout_seconds: 0, activities: [] }));
    const r = aion(['pack', project, '--json']);
    assert.equal(r.code, 6);
    assert.equal(r.json.error.code, 'invalid_package');
    assert.match(r.json.error.message, /broken\/workflow\.json: field 'timeout_seconds' must be an integer ≥ 1, got 0/);
  });

  test('help has a description and examples', () => {
    const r = aion(['pack', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /build a \.aion archive/i);
    assert.match(r.stdout, /--out <file>/);
    assert.match(r.stdout, /Examples:\n\s+\$ aion pack/);
  });
});

describe('aion inspect', () => {
  let archive: string;
  before(() => {
    archive = path.join(scratch, 'inspect-order.aion');
    const r = aion(['pack', path.join(FIXTURES, 'order'), '--out', archive]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('--json has exactly the contract fields', () => {
    const r = aion(['inspect', archive, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(r.json), [
      'workflow_type', 'entry_module', 'entry_function', 'version', 'manifest_digest',
      'timeout_seconds', 'activities', 'modules', 'format_version', 'label',
      'input_schema', 'output_schema', 'workflow_types',
    ]);
    assert.equal(r.json.workflow_type, 'order');
    assert.equal(r.json.entry_module, 'order');
    assert.equal(r.json.entry_function, 'run');
    assert.match(r.json.version, /^[0-9a-f]{64}$/);
    assert.match(r.json.manifest_digest, /^[0-9a-f]{64}$/);
    assert.notEqual(r.json.manifest_digest, r.json.version);
    assert.equal(r.json.timeout_seconds, 60);
    assert.deepEqual(r.json.activities, ['charge']);
    assert.deepEqual(r.json.modules, [{ name: 'order', bytes: readFileSync(path.join(FIXTURES, 'order/modules/order.js')).length }]);
    assert.equal(r.json.format_version, 1);
  });

  test('agrees with pack on the version', () => {
    const p = aion(['pack', path.join(FIXTURES, 'order'), '--out', path.join(scratch, 'again.aion'), '--json']);
    const i = aion(['inspect', archive, '--json']);
    assert.equal(p.json.version, i.json.version);
  });

  test('text output is aligned and plain when piped', () => {
    const r = aion(['inspect', archive]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, ANSI);
    assert.match(r.stdout, /^workflow_type +order$/m);
    assert.match(r.stdout, /^version +[0-9a-f]{64}$/m);
    assert.match(r.stdout, /^activities +charge$/m);
    assert.match(r.stdout, /^ {2}order +\d+ bytes$/m);
    const valueColumns = new Set(r.stdout.split('\n').filter((l) => /^\S/.test(l)).map((l) => l.search(/ {2}\S/)));
    assert.equal(valueColumns.size, 1, 'values start in one column');
  });

  test('a missing archive exits 2', () => {
    const r = aion(['inspect', path.join(scratch, 'missing.aion'), '--json']);
    assert.equal(r.code, 2);
    assert.equal(r.json.error.code, 'usage');
    assert.match(r.json.error.message, /no such archive: .*missing\.aion/);
  });

  const corpus = malformedArchives().filter((c) =>
    !c.limits &&
    ['not-a-zip', 'truncated-half', 'path-traversal', 'symlink-entry', 'version-mismatch', 'crc-mismatch',
      'zip-bomb-ratio', 'manifest-unknown-key', 'module-name-dollar', 'missing-entry-module', 'lying-size-smaller'].includes(c.name),
  );
  test('the CLI corpus is not empty', () => assert.equal(corpus.length, 11));
  for (const c of corpus) {
    test(`exits 6 for ${c.name}, naming the problem`, () => {
      const file = path.join(scratch, `${c.name}.aion`);
      writeFileSync(file, c.bytes);
      const text = aion(['inspect', file]);
      assert.equal(text.code, 6, text.stderr);
      assert.match(text.stderr, /^error: /);
      assert.match(text.stderr, c.expect);
      assert.equal(text.stdout, '');
      assert.doesNotMatch(text.stderr, ANSI);
      const json = aion(['inspect', file, '--json']);
      assert.equal(json.code, 6);
      assert.deepEqual(Object.keys(json.json), ['error']);
      assert.equal(json.json.error.code, 'invalid_package');
      assert.match(json.json.error.message, c.expect);
    });
  }
});

test('command modules do not import the package code at start-up', () => {
  for (const name of ['pack', 'inspect']) {
    const js = readFileSync(path.join(ROOT, 'dist/src/cli/commands', `${name}.js`), 'utf8');
    assert.doesNotMatch(js, /^import .*package\//m, `${name}.js imports src/package statically`);
    assert.doesNotMatch(js, /^import .*runtime\//m, `${name}.js imports src/runtime statically`);
    assert.match(js, /await import\('\.\.\/\.\.\/package\/index\.js'\)/);
  }
});
