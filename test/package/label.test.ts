// The author label: carried in workflow.json and the manifest, validated, never part of the
// version; archives without one are byte-for-byte what they were.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { packProject, readPackage } from '../../src/package/index.js';
import { FIXTURES, tempDir } from '../helpers/cli.js';
import { editConfig, packFixture, packVariant } from '../helpers/packages.js';

let work: { dir: string; cleanup: () => void };
before(() => {
  work = tempDir('aion-label-');
});
after(() => work.cleanup());

describe('label', () => {
  test('is carried in the manifest, not in the version', async () => {
    const plain = await packFixture('approval', work.dir, 'plain.aion');
    const labelled = await packVariant('approval', work.dir, 'labelled', (dir) => editConfig(dir, { label: 'v1 — «first» release' }));
    assert.equal(labelled.version, plain.version, 'the label does not change the version');
    const pkg = readPackage(readFileSync(labelled.path));
    assert.equal(pkg.manifest.label, 'v1 — «first» release');
    const bare = readPackage(readFileSync(plain.path));
    assert.equal('label' in bare.manifest, false, 'no label: no key (archives stay byte-for-byte as before)');
    assert.notEqual(pkg.manifestDigest, bare.manifestDigest);
  });

  test('must be 1 to 64 printable characters', async () => {
    for (const [tag, label] of [['long', 'x'.repeat(65)], ['empty', ''], ['newline', 'a\nb'], ['escape', 'red \u001b[31m'], ['number', 7], ['zwj', 'a\u200db']] as const) {
      const error = await packVariant('approval', work.dir, `bad-${tag}`, (dir) => editConfig(dir, { label })).then(
        () => assert.fail(`${tag} accepted`),
        (e: unknown) => e,
      );
      assert.ok(isAionError(error, 'invalid_package'), `${tag}: ${String(error)}`);
      assert.match((error as Error).message, /workflow.json: field 'label' must be 1 to 64 printable characters/);
    }
    const max = await packVariant('approval', work.dir, 'max', (dir) => editConfig(dir, { label: 'é'.repeat(64) }));
    assert.equal(readPackage(readFileSync(max.path)).manifest.label, 'é'.repeat(64));
  });

  test('the fixture approval_v2 carries one', async () => {
    const { pkg } = await packProject(path.join(FIXTURES, 'approval_v2'), { out: path.join(work.dir, 'v2.aion') });
    assert.equal(pkg.manifest.label, 'v2: records who approved and when');
  });
});
