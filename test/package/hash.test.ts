// The content hash is the contract's formula, checked against an independent implementation
// (node:crypto over one concatenated buffer) rather than against itself.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { contentHash, ContentHasher, manifestDigest, sha256Hex, canonicalJson } from '../../src/package/index.js';
import type { Manifest } from '../../src/package/index.js';

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** The contract, written out independently: sort names by UTF-8 bytes, concatenate, hash. */
function referenceHash(modules: [string, Buffer][]): string {
  const sorted = [...modules].sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  const parts: Buffer[] = [];
  for (const [name, bytes] of sorted) {
    const n = Buffer.from(name, 'utf8');
    parts.push(u64(n.length), n, u64(bytes.length), bytes);
  }
  return createHash('sha256').update(Buffer.concat(parts)).digest('hex');
}

describe('contentHash', () => {
  test('empty set is SHA-256 of nothing', () => {
    assert.equal(contentHash(new Map()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  test('matches the contract formula for a known single module', () => {
    const bytes = Buffer.from('exports.run = async () => 1;\n');
    const expected = createHash('sha256')
      .update(Buffer.concat([u64(5), Buffer.from('hello'), u64(bytes.length), bytes]))
      .digest('hex');
    assert.equal(contentHash(new Map([['hello', bytes]])), expected);
  });

  test('matches the reference over names whose byte order differs from insertion order', () => {
    // '@' (0x40) < '_' (0x5f) < 'b' (0x62): byte order is a, a@b, a_b, ab
    const modules: [string, Buffer][] = [
      ['ab', Buffer.from('4')],
      ['a_b', Buffer.from('3')],
      ['a', Buffer.from('1')],
      ['a@b', Buffer.from('2')],
      ['z', Buffer.alloc(0)],
    ];
    const got = contentHash(new Map(modules));
    assert.equal(got, referenceHash(modules));
    assert.equal(contentHash(new Map([...modules].reverse())), got, 'insertion order must not matter');
    assert.match(got, /^[0-9a-f]{64}$/);
    // The streaming hasher (load: one module at a time) gives the same, and only in byte order.
    const hasher = new ContentHasher();
    for (const name of ['a', 'a@b', 'a_b', 'ab', 'z']) hasher.add(name, modules.find(([n]) => n === name)![1]);
    assert.equal(hasher.digest(), got);
    const wrong = new ContentHasher();
    wrong.add('ab', Buffer.from('4'));
    assert.throws(() => wrong.add('a', Buffer.from('1')), /out of order/);
  });

  test('orders by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF21 (EF BC A1 in UTF-8) sorts after U+1F600 (F0 ...) in UTF-16 but before it in UTF-8.
    const modules: [string, Buffer][] = [
      ['\u{1F600}', Buffer.from('x')],
      ['\uFF21', Buffer.from('y')],
    ];
    assert.equal(contentHash(new Map(modules)), referenceHash(modules));
  });

  test('name/content boundaries are length-prefixed (no ambiguity)', () => {
    const a = contentHash(new Map([['ab', Buffer.from('c')]]));
    const b = contentHash(new Map([['a', Buffer.from('bc')]]));
    assert.notEqual(a, b);
  });

  test('a one-byte change changes the hash', () => {
    const a = contentHash(new Map([['m', Buffer.from('abc')]]));
    const b = contentHash(new Map([['m', Buffer.from('abd')]]));
    assert.notEqual(a, b);
  });

  test('sha256Hex is lowercase hex SHA-256', () => {
    assert.equal(sha256Hex(Buffer.from('abc')), createHash('sha256').update('abc').digest('hex'));
  });
});

describe('manifestDigest', () => {
  const manifest: Manifest = {
    format_version: 1,
    workflow_type: 'hello',
    entry_module: 'hello',
    entry_function: 'run',
    timeout_seconds: 60,
    activities: ['b', 'a'],
    version: 'f'.repeat(64),
    modules: [{ name: 'hello', bytes: 3 }],
  };

  test('is SHA-256 of canonical JSON: sorted keys, no whitespace', () => {
    const canonical =
      '{"activities":["b","a"],"entry_function":"run","entry_module":"hello","format_version":1,' +
      `"modules":[{"bytes":3,"name":"hello"}],"timeout_seconds":60,"version":"${'f'.repeat(64)}","workflow_type":"hello"}`;
    assert.equal(canonicalJson(manifest), canonical);
    assert.equal(manifestDigest(manifest), createHash('sha256').update(canonical).digest('hex'));
  });

  test('does not depend on key order, but does on values', () => {
    const shuffled = Object.fromEntries(Object.entries(manifest).reverse()) as unknown as Manifest;
    assert.equal(manifestDigest(shuffled), manifestDigest(manifest));
    assert.notEqual(manifestDigest({ ...manifest, timeout_seconds: 61 }), manifestDigest(manifest));
  });
});
