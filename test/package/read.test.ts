// readPackage: accepts what pack writes, and refuses every malformed archive in the corpus
// with invalid_package and a message naming the problem.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { readPackage, readPackageFile, contentHash, manifestDigest, packProject, FORMAT_VERSION } from '../../src/package/index.js';
import { isAionError } from '../../src/errors.js';
import { malformedArchives, buildPackage } from '../helpers/malformed.js';
import { FIXTURES, tempDir } from '../helpers/cli.js';

describe('readPackage', () => {
  test('reads a hand-built valid archive', () => {
    const pkg = readPackage(buildPackage());
    assert.equal(pkg.manifest.workflow_type, 'hello');
    assert.deepEqual([...pkg.modules.keys()], ['hello', 'hello@util']);
    assert.equal(pkg.version, contentHash(pkg.modules));
    assert.equal(pkg.manifestDigest, manifestDigest(pkg.manifest));
  });

  test('round-trips a packed fixture', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const out = path.join(dir, 'hello.aion');
      const packed = await packProject(path.join(FIXTURES, 'hello_v1'), { out });
      const pkg = await readPackageFile(out);
      assert.equal(pkg.version, packed.pkg.version);
      assert.equal(pkg.manifest.format_version, FORMAT_VERSION);
      assert.deepEqual(pkg.manifest.modules.map((m) => m.name), ['hello', 'hello@util']);
      assert.match(Buffer.from(pkg.modules.get('hello@util')!).toString('utf8'), /exports\.nameOf/);
      assert.deepEqual([...pkg.sources.keys()], ['README.md']);
      assert.equal(pkg.manifest.modules[0]!.bytes, pkg.modules.get('hello')!.length);
    } finally {
      cleanup();
    }
  });

  test('a missing archive file is a usage error', async () => {
    await assert.rejects(readPackageFile('/nonexistent/x.aion'), (err: unknown) => isAionError(err, 'usage') && /no such archive/.test(err.message));
  });

  test('an archive file over the size limit is refused before reading', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, 'a.aion');
      writeFileSync(file, buildPackage());
      await assert.rejects(readPackageFile(file, { maxArchiveBytes: 10 }), (err: unknown) => isAionError(err, 'invalid_package') && /exceeds the limit of 10 bytes/.test(err.message));
    } finally {
      cleanup();
    }
  });
});

describe('malformed archives', () => {
  const corpus = malformedArchives();

  test('the corpus covers every promised rejection', () => {
    const names = new Set(corpus.map((c) => c.name));
    for (const required of [
      'not-a-zip', 'truncated-half', 'missing-manifest', 'manifest-unknown-key', 'manifest-missing-key',
      'manifest-unsupported-format-version', 'version-mismatch', 'path-traversal', 'absolute-path',
      'duplicate-entry', 'unexpected-entry', 'symlink-entry', 'module-name-dollar', 'module-name-dotdot',
      'module-name-empty-segment', 'module-not-utf8', 'missing-entry-module', 'limit-archive-bytes',
      'limit-entries', 'limit-entry-bytes', 'limit-total-inflated', 'limit-manifest-bytes', 'crc-mismatch',
      'bad-compression-method', 'lying-size-smaller', 'lying-size-larger', 'zip-bomb-ratio', 'too-many-entries',
    ]) {
      assert.ok(names.has(required), `corpus lacks ${required}`);
    }
    assert.equal(names.size, corpus.length, 'case names are unique');
  });

  for (const c of corpus) {
    test(`rejects ${c.name}`, () => {
      assert.throws(
        () => readPackage(c.bytes, c.limits),
        (err: unknown) => {
          assert.ok(isAionError(err, 'invalid_package'), `expected invalid_package, got ${String(err)}`);
          assert.match(err.message, c.expect);
          return true;
        },
      );
    });
  }

  test('cases that breach a small limit are otherwise valid', () => {
    for (const c of corpus.filter((x) => x.limits && x.name.startsWith('limit-') && x.name !== 'limit-ratio-small-floor')) {
      assert.doesNotThrow(() => readPackage(c.bytes), `${c.name} should be valid under default limits`);
    }
  });
});
