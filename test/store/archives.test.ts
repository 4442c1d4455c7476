// Archives stored outside LevelDB (issue 14): one content-addressed file per package version
// under <state>/archives, written and synced before the batch that references it, removed after
// the batch that drops its last reference; orphans cleaned up; format-1 directories (archives
// inside LevelDB) still read; two loads of one version never race on its file.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { aion, aionAsync, tempDir } from '../helpers/cli.js';
import { packFixture, packVariant, storedArchive, type Packed } from '../helpers/packages.js';
import { ArchiveFiles } from '../../src/store/archives.js';
import { isAionError } from '../../src/errors.js';
import { openEngine } from '../engine/support.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;

before(async () => {
  work = tempDir('aion-archives-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
});
after(() => work.cleanup());

function resultOf(state: string, workflowId: string): unknown {
  const r = aion(['--state-dir', state, 'show', workflowId, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.status, 'completed', JSON.stringify(r.json));
  return r.json.result;
}

async function dbKeys(state: string): Promise<string[]> {
  const db = new Level<string, Uint8Array>(path.join(state, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  try {
    return await db.keys().all();
  } finally {
    await db.close();
  }
}

describe('ArchiveFiles', () => {
  test('write (from bytes or an open file), open, remove, orphans; 0600 files in a 0700 directory, no temp file left', async () => {
    const state = path.join(work.dir, 'files');
    mkdirSync(state);
    const files = new ArchiveFiles(state);
    const bytes = readFileSync(v1.path);
    await files.write(v1.version, { bytes });
    const fd = openSync(v2.path, 'r');
    try {
      await files.write(v2.version, { fd, size: statSync(v2.path).size });
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(readdirSync(files.dir).sort(), [`${v1.version}.aion`, `${v2.version}.aion`].sort());
    assert.equal((statSync(files.dir).mode & 0o777).toString(8), '700');
    for (const v of [v1, v2]) {
      assert.equal((statSync(files.pathOf(v.version)).mode & 0o777).toString(8), '600');
      assert.deepEqual(readFileSync(files.pathOf(v.version)), readFileSync(v.path));
    }
    const opened = files.open(v1.version)!;
    assert.equal(opened.size, bytes.length);
    closeSync(opened.fd);
    assert.equal(files.open('0'.repeat(64)), undefined, 'none stored: undefined');
    assert.throws(() => files.pathOf('../../etc/passwd'), (e: unknown) => isAionError(e, 'internal'));

    writeFileSync(path.join(files.dir, '.tmp-0123456789abcdef-1-00000000'), 'half');
    assert.deepEqual(files.orphans(new Set([v1.version])), [`${v2.version}.aion`, '.tmp-0123456789abcdef-1-00000000']);
    assert.deepEqual(await files.removeOrphans(new Set([v1.version])), [`${v2.version}.aion`, '.tmp-0123456789abcdef-1-00000000']);
    await files.remove(v1.version);
    await files.remove(v1.version); // none is fine
    assert.deepEqual(readdirSync(files.dir), []);
  });

  test('a write whose input is shorter than it claims fails and leaves no temp file', async () => {
    const state = path.join(work.dir, 'short');
    mkdirSync(state);
    const files = new ArchiveFiles(state);
    const fd = openSync(v1.path, 'r');
    try {
      await assert.rejects(files.write(v1.version, { fd, size: statSync(v1.path).size + 100 }), (e: unknown) => isAionError(e) && /ended at/.test(e.message));
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(readdirSync(files.dir), []);
  });
});

describe('archives through bin/aion', () => {
  test('a load stores its archive as a file, byte for byte, and nothing of it in LevelDB; unload removes it', async () => {
    const state = path.join(work.dir, 'cli');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'load', v2.path]).code, 0);
    assert.deepEqual(readFileSync(storedArchive(state, v1.version)), readFileSync(v1.path));
    assert.deepEqual(readFileSync(storedArchive(state, v2.version)), readFileSync(v2.path));
    const keys = await dbKeys(state);
    assert.deepEqual(keys.filter((k) => k.startsWith('arc\x00')), [], 'no archive bytes in LevelDB');
    assert.equal(JSON.parse(new TextDecoder().decode((await (async () => {
      const db = new Level<string, Uint8Array>(path.join(state, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view' });
      await db.open();
      try {
        return await db.get('meta\x00format');
      } finally {
        await db.close();
      }
    })())!)).format_version, 2);
    // A run on v1 recovers from the file in a fresh process.
    assert.equal(aion(['--state-dir', state, 'route', 'hello', v1.version]).code, 0);
    const started = aion(['--state-dir', state, 'start', 'hello', '--id', 'f1', '--input', '{"name":"file"}', '--json']);
    assert.equal(started.code, 0, started.stderr);
    assert.deepEqual(resultOf(state, 'f1'), { greeting: 'hello, file' });
    assert.equal(aion(['--state-dir', state, 'unload', 'hello', v2.version]).code, 0);
    assert.equal(existsSync(storedArchive(state, v2.version)), false);
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
  });

  test('two loads of one version at once (two processes): both succeed, one intact file', async () => {
    const state = path.join(work.dir, 'race');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    const results = await Promise.all([0, 1, 2].map(() => aionAsync(['--state-dir', state, 'load', v2.path, '--lock-timeout', '60'])));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(path.join(state, 'archives')).sort(), [`${v1.version}.aion`, `${v2.version}.aion`].sort());
    assert.deepEqual(readFileSync(storedArchive(state, v2.version)), readFileSync(v2.path));
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
    assert.equal(aion(['--state-dir', state, 'history', '--json']).json.history.length, 4);
  });

  test('two loads of one version at once in one engine: serialized, one intact file', async () => {
    const state = path.join(work.dir, 'race-inprocess');
    const { engine } = await openEngine(state);
    try {
      const outcomes = await Promise.all([engine.loadPackage({ path: v1.path }), engine.loadPackage({ path: v1.path }), engine.loadPackage({ bytes: readFileSync(v1.path) })]);
      assert.deepEqual(outcomes.map((o) => o.freshly_loaded).sort(), [false, false, true]);
      assert.deepEqual(readdirSync(path.join(state, 'archives')), [`${v1.version}.aion`]);
      assert.deepEqual(readFileSync(storedArchive(state, v1.version)), readFileSync(v1.path));
    } finally {
      await engine.close();
    }
  });

  test('one version serving two types shares one file, which stays until the last of them is unloaded', async () => {
    // Same modules, two entry modules: two workflow types of one version (its content hash).
    const project = (entry: string) => (dir: string) => {
      rmSync(path.join(dir, 'modules'), { recursive: true, force: true });
      mkdirSync(path.join(dir, 'modules'));
      writeFileSync(path.join(dir, 'modules', 'alpha.js'), "exports.run = async () => ({ from: 'alpha' });\n");
      writeFileSync(path.join(dir, 'modules', 'beta.js'), "exports.run = async () => ({ from: 'beta' });\n");
      writeFileSync(path.join(dir, 'workflow.json'), JSON.stringify({ entry_module: entry, entry_function: 'run', timeout_seconds: 60, activities: [] }));
    };
    const alpha = await packVariant('hello_v1', work.dir, 'shared-alpha', project('alpha'));
    const beta = await packVariant('hello_v1', work.dir, 'shared-beta', project('beta'));
    assert.equal(alpha.version, beta.version, 'one version');
    const alpha2 = await packVariant('hello_v1', work.dir, 'shared-alpha2', (dir) => {
      project('alpha')(dir);
      writeFileSync(path.join(dir, 'modules', 'alpha.js'), "exports.run = async () => ({ from: 'alpha2' });\n");
    });
    const state = path.join(work.dir, 'shared');
    for (const p of [alpha, beta, alpha2]) assert.equal(aion(['--state-dir', state, 'load', p.path]).code, 0);
    assert.deepEqual(readdirSync(path.join(state, 'archives')).sort(), [`${alpha.version}.aion`, `${alpha2.version}.aion`].sort());
    assert.equal(aion(['--state-dir', state, 'unload', 'alpha', alpha.version]).code, 0);
    assert.ok(existsSync(storedArchive(state, alpha.version)), 'beta still names the file');
    const r = aion(['--state-dir', state, 'start', 'beta', '--id', 'b1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(resultOf(state, 'b1'), { from: 'beta' });
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
    // The last type of that version moves on and drops it: now the file goes.
    const beta2 = await packVariant('hello_v1', work.dir, 'shared-beta2', (dir) => {
      project('beta')(dir);
      writeFileSync(path.join(dir, 'modules', 'beta.js'), "exports.run = async () => ({ from: 'beta2' });\n");
    });
    assert.equal(aion(['--state-dir', state, 'load', beta2.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'unload', 'beta', alpha.version]).code, 0);
    assert.equal(existsSync(storedArchive(state, alpha.version)), false, 'no row names the version any more');
    assert.deepEqual(readdirSync(path.join(state, 'archives')).sort(), [`${alpha2.version}.aion`, `${beta2.version}.aion`].sort());
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
  });
});

describe('a format-1 state directory (archives inside LevelDB)', () => {
  /** Turns a directory written by this build back into the old layout: archive bytes in `arc` keys, no files, format 1. */
  async function toFormat1(state: string, archives: Packed[]): Promise<void> {
    const db = new Level<string, Uint8Array>(path.join(state, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    try {
      const ops: { type: 'put'; key: string; value: Uint8Array }[] = archives.map((a) => ({ type: 'put', key: `arc\x00${a.type}\x00${a.version}`, value: readFileSync(storedArchive(state, a.version)) }));
      ops.push({ type: 'put', key: 'meta\x00format', value: new TextEncoder().encode(JSON.stringify({ format_version: 1 })) });
      await db.batch(ops, { sync: true });
    } finally {
      await db.close();
    }
    rmSync(path.join(state, 'archives'), { recursive: true });
  }

  test('is read as it is; the first load raises it to format 2; unload deletes an old archive key', async () => {
    const state = path.join(work.dir, 'format1');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'start', 'hello', '--id', 'old']).code, 0);
    await toFormat1(state, [v1]);
    assert.equal(aion(['--state-dir', state, 'versions']).code, 0);
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0, 'doctor reads archives from LevelDB');
    const started = aion(['--state-dir', state, 'start', 'hello', '--id', 'l1', '--input', '{"name":"legacy"}', '--json']);
    assert.equal(started.code, 0, started.stderr);
    assert.deepEqual(resultOf(state, 'l1'), { greeting: 'hello, legacy' }, 'a run on a format-1 archive');
    assert.equal(existsSync(path.join(state, 'archives')), false, 'no migration by reading or running');
    assert.ok((await dbKeys(state)).includes(`arc\x00hello\x00${v1.version}`));

    assert.equal(aion(['--state-dir', state, 'load', v2.path]).code, 0);
    assert.ok(existsSync(storedArchive(state, v2.version)));
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0, 'both layouts at once');
    assert.equal(aion(['--state-dir', state, 'unload', 'hello', v1.version]).code, 0);
    assert.deepEqual((await dbKeys(state)).filter((k) => k.startsWith('arc\x00')), [], 'the old archive key went with its version');
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
  });

  test('re-loading a version kept in LevelDB moves its archive into a file', async () => {
    const state = path.join(work.dir, 'format1-reload');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    await toFormat1(state, [v1]);
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.ok(existsSync(storedArchive(state, v1.version)));
    assert.deepEqual((await dbKeys(state)).filter((k) => k.startsWith('arc\x00')), []);
    assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
  });
});
