// The zip container: deterministic writer, strict reader, interoperable with standard tools.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { crc32, writeZip, listZip, extractEntry, assembleZip, deflateEntry } from '../../src/package/zip.js';
import { DEFAULT_LIMITS } from '../../src/package/index.js';
import { isAionError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';

const enc = new TextEncoder();

function readAll(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of listZip(bytes, DEFAULT_LIMITS)) out.set(e.name, Buffer.from(extractEntry(bytes, e)).toString('utf8'));
  return out;
}

describe('crc32', () => {
  test('standard check values', () => {
    assert.equal(crc32(enc.encode('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(crc32(enc.encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  });
});

describe('zip writer and reader', () => {
  const entries = [
    { name: 'manifest.json', data: enc.encode('{"a":1}') },
    { name: 'modules/a.js', data: enc.encode('exports.x = 1;\n'.repeat(50)) },
    { name: 'src/empty', data: new Uint8Array(0) },
  ];

  test('round-trips entries in order', () => {
    const bytes = writeZip(entries);
    const listed = listZip(bytes, DEFAULT_LIMITS);
    assert.deepEqual(listed.map((e) => e.name), entries.map((e) => e.name));
    const all = readAll(bytes);
    for (const e of entries) assert.equal(all.get(e.name), Buffer.from(e.data).toString('utf8'));
  });

  test('is byte-identical across runs and time zones', () => {
    const a = writeZip(entries);
    const old = process.env.TZ;
    process.env.TZ = 'Pacific/Kiritimati';
    try {
      const b = writeZip(entries);
      assert.equal(Buffer.compare(a, b), 0);
    } finally {
      if (old === undefined) delete process.env.TZ;
      else process.env.TZ = old;
    }
  });

  test('writes fixed DOS timestamp 1980-01-01 00:00, no extra fields', () => {
    const bytes = writeZip(entries.slice(0, 1));
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(v.getUint32(0, true), 0x04034b50);
    assert.equal(v.getUint16(10, true), 0, 'time');
    assert.equal(v.getUint16(12, true), 0x21, 'date');
    assert.equal(v.getUint16(28, true), 0, 'extra length');
  });

  test('the system unzip accepts our archives', (t) => {
    const probe = spawnSync('unzip', ['-v'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip('unzip is not installed');
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, 'a.zip');
      writeFileSync(file, writeZip(entries));
      const r = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /No errors detected/);
    } finally {
      cleanup();
    }
  });

  test('reads archives written by the system zip (extra fields, directory entries)', (t) => {
    const probe = spawnSync('zip', ['-v'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip('zip is not installed');
    const { dir, cleanup } = tempDir();
    try {
      mkdirSync(path.join(dir, 'in', 'modules'), { recursive: true });
      writeFileSync(path.join(dir, 'in', 'modules', 'a.js'), 'exports.a = 1;\n'.repeat(20));
      const r = spawnSync('zip', ['-qr', path.join(dir, 'out.zip'), 'modules'], { cwd: path.join(dir, 'in') });
      assert.equal(r.status, 0);
      const all = readAll(readFileSync(path.join(dir, 'out.zip')));
      assert.equal(all.get('modules/a.js'), 'exports.a = 1;\n'.repeat(20));
      assert.ok(all.has('modules/'), 'directory entry listed');
    } finally {
      cleanup();
    }
  });

  test('accepts an archive comment', () => {
    const bytes = assembleZip([deflateEntry('a.txt', enc.encode('hi'))], enc.encode('a comment PK'));
    assert.equal(readAll(bytes).get('a.txt'), 'hi');
  });

  test('inflates data from another deflate implementation (node:zlib)', () => {
    const data = enc.encode('interop '.repeat(1000));
    const compressed = deflateRawSync(data, { level: 9 });
    const bytes = assembleZip([{ name: 'x', method: 8, crc32: crc32(data), compressedSize: compressed.length, size: data.length, data: compressed }]);
    assert.equal(readAll(bytes).get('x'), 'interop '.repeat(1000));
  });

  test('large multi-chunk entries inflate exactly', () => {
    const data = new Uint8Array(300_000);
    let x = 0x9e3779b9;
    for (let i = 0; i < data.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data[i] = i % 3 === 0 ? x & 0xff : 0x61; // part noise, part repetition
    }
    const bytes = writeZip([{ name: 'big', data }]);
    const [e] = listZip(bytes, DEFAULT_LIMITS);
    assert.equal(Buffer.compare(extractEntry(bytes, e!), data), 0);
  });

  test('a lying size never yields more than the declared bytes', () => {
    const data = enc.encode('0123456789'.repeat(100));
    const raw = deflateEntry('x', data);
    const bytes = assembleZip([{ ...raw, size: 100 }]);
    const [e] = listZip(bytes, DEFAULT_LIMITS);
    assert.throws(
      () => extractEntry(bytes, e!),
      (err: unknown) => isAionError(err, 'invalid_package') && /inflates to more than its declared 100 bytes/.test(err.message),
    );
  });
});
