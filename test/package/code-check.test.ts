// pack and inspect refuse what load refuses for the package itself (issue 14 item 10): every
// module compiles, the entry module evaluates and exports its entry function and activities.
// Through bin/aion: each refusal is invalid_package (exit 6) with the message load gives, and
// pack writes no archive.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, FIXTURES, tempDir } from '../helpers/cli.js';
import { editConfig } from '../helpers/packages.js';
import { packProject } from '../../src/package/index.js';

let work: { dir: string; cleanup: () => void };
before(() => {
  work = tempDir('aion-codecheck-');
});
after(() => work.cleanup());

const cases: [string, (dir: string) => void, RegExp][] = [
  ['a syntax error in a module', (dir) => writeFileSync(path.join(dir, 'modules', 'hello', 'broken.js'), 'exports.x = (;\n'), /hello@broken/],
  ['a missing entry function', (dir) => editConfig(dir, { entry_function: 'nope' }), /nope/],
  ['import() in a module', (dir) => writeFileSync(path.join(dir, 'modules', 'hello', 'sneaky.js'), "exports.x = () => import('fs');\n"), /import/],
  ['an entry module that throws at load', (dir) => writeFileSync(path.join(dir, 'modules', 'hello.js'), "throw new Error('boom at load');\n"), /boom at load/],
  ['an entry module that never finishes loading', (dir) => writeFileSync(path.join(dir, 'modules', 'hello.js'), 'for (;;) {}\n'), /did not finish/],
];

describe('pack, inspect and load refuse the same broken code', () => {
  let n = 0;
  for (const [what, edit, pattern] of cases) {
    test(what, async () => {
      const project = path.join(work.dir, `p${++n}`);
      cpSync(path.join(FIXTURES, 'hello_v1'), project, { recursive: true });
      edit(project);
      const out = path.join(work.dir, `p${n}.aion`);
      const packed = aion(['pack', project, '--out', out, '--json']);
      assert.equal(packed.code, 6, `pack: ${packed.stdout}${packed.stderr}`);
      assert.equal(packed.json.error.code, 'invalid_package');
      assert.match(packed.json.error.message, pattern);
      assert.equal(existsSync(out), false, 'pack wrote no archive');

      // The same archive, built without the check (as an older aion or another tool would).
      const raw = path.join(work.dir, `raw${n}.aion`);
      await packProject(project, { out: raw });
      const inspected = aion(['inspect', raw, '--json']);
      const state = path.join(work.dir, `state${n}`);
      const loaded = aion(['--state-dir', state, 'load', raw, '--json']);
      assert.equal(loaded.code, 6, `load: ${loaded.stdout}`);
      assert.equal(inspected.code, 6, `inspect: ${inspected.stdout}${inspected.stderr}`);
      assert.equal(inspected.json.error.message, loaded.json.error.message, 'inspect says what load says');
      assert.equal(packed.json.error.message, loaded.json.error.message, 'pack says what load says');
    });
  }

  test('a sound project still packs and inspects', () => {
    const out = path.join(work.dir, 'ok.aion');
    assert.equal(aion(['pack', path.join(FIXTURES, 'hello_v1'), '--out', out]).code, 0);
    assert.equal(aion(['inspect', out, '--json']).code, 0);
  });
});
