// readPackage: accepts what pack writes, and refuses every malformed archive in the corpus
// with invalid_package and a message naming the problem.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { appendFileSync, writeFileSync } from 'node:fs';
import { readPackage, readPackageFile, contentHash, manifestDigest, packProject, scanPackage, openArchiveFile, ArchiveTexts, FORMAT_VERSION } from '../../src/package/index.js';
import { isAionError } from '../../src/errors.js';
import { malformedArchives, buildPackage } from '../helpers/malformed.js';
import { hostileArchives } from '../helpers/hostile.js';
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

describe('scanPackage reading a file piece by piece', () => {
  // Load reads archives from an open file, an entry at a time; inspect and pack read them in
  // memory. Both must refuse (or accept) exactly the same archives, with the same message.
  const outcome = (fn: () => { version: string }): string => {
    try {
      return `ok ${fn().version}`;
    } catch (error) {
      return isAionError(error) ? `${error.code}: ${error.message}` : `crash: ${String(error)}`;
    }
  };

  test('every malformed and hostile archive: the same outcome from a file as from bytes', () => {
    const { dir, cleanup } = tempDir();
    try {
      const cases = [...malformedArchives().map((c) => ({ name: c.name, bytes: c.bytes, limits: c.limits })), ...hostileArchives({ flips: 150 }).cases.map((c) => ({ name: c.name, bytes: c.bytes, limits: undefined }))];
      const file = path.join(dir, 'case.aion');
      let differ = 0;
      for (const c of cases) {
        writeFileSync(file, c.bytes);
        const fromBytes = outcome(() => readPackage(c.bytes, c.limits));
        const opened = openArchiveFile(file);
        let fromFile: string;
        try {
          fromFile = outcome(() => scanPackage(opened.source, c.limits));
        } finally {
          opened.close();
        }
        if (fromFile !== fromBytes) {
          differ++;
          assert.equal(fromFile, fromBytes, c.name);
        }
      }
      assert.equal(differ, 0);
      assert.ok(cases.length > 500, `${cases.length} cases`);
    } finally {
      cleanup();
    }
  });

  test('a packed fixture: the same version, manifest and entries; modules are handed over one at a time', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const out = path.join(dir, 'hello.aion');
      const packed = await packProject(path.join(FIXTURES, 'hello_v1'), { out });
      const opened = openArchiveFile(out);
      try {
        const seen: string[] = [];
        const scanned = scanPackage(opened.source, {}, { onModule: (name, bytes) => void seen.push(`${name}:${bytes.length}`) });
        assert.equal(scanned.version, packed.pkg.version);
        assert.equal(scanned.manifestDigest, packed.pkg.manifestDigest);
        assert.deepEqual(seen, [...packed.pkg.modules].map(([name, bytes]) => `${name}:${bytes.length}`));
        assert.deepEqual([...scanned.modules.keys()], [...packed.pkg.modules.keys()]);
        const texts = new ArchiveTexts(opened.source, scanned.modules, false);
        for (const [name, bytes] of packed.pkg.modules) assert.deepEqual(Buffer.from(texts.read(name)), Buffer.from(bytes), name);
      } finally {
        opened.close();
      }
    } finally {
      cleanup();
    }
  });

  test('a file that changes after it was opened is noticed', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, 'a.aion');
      writeFileSync(file, buildPackage());
      const opened = openArchiveFile(file);
      try {
        opened.unchanged();
        await new Promise((resolve) => setTimeout(resolve, 20));
        appendFileSync(file, 'more');
        assert.throws(() => opened.unchanged(), (err: unknown) => isAionError(err, 'usage') && /changed while it was being loaded/.test(err.message));
      } finally {
        opened.close();
      }
    } finally {
      cleanup();
    }
  });
});
