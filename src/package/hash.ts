// Hashes that identify a package. The version of a package is its content hash: SHA-256 over
// its modules only (CLI contract, "Versions"); the manifest digest identifies its manifest.
// Pure functions over bytes: they never fail on valid input and do no I/O.
import { createHash } from 'node:crypto';
import { canonicalJson } from './manifest.js';
import type { Manifest } from './types.js';

const encoder = new TextEncoder();

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Compares two strings by the bytes of their UTF-8 encodings (not by UTF-16 code units). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(encoder.encode(a), encoder.encode(b));
}

function u64be(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/**
 * The content hash (version) of a set of modules keyed by logical name: SHA-256 over the
 * modules in ascending UTF-8 byte order of name, each contributing
 * `u64be(len(name)) ‖ name ‖ u64be(len(bytes)) ‖ bytes`. Streamed into one hasher; the
 * map's insertion order does not matter. Returns 64 lowercase hex characters.
 */
export function contentHash(modules: ReadonlyMap<string, Uint8Array>): string {
  const hasher = new ContentHasher();
  for (const name of [...modules.keys()].sort(compareUtf8)) hasher.add(name, modules.get(name)!);
  return hasher.digest();
}

/**
 * The content hash computed one module at a time (a reader inflating an archive entry by
 * entry need not hold them all): `add` each module in ascending UTF-8 byte order of name (an
 * out-of-order or repeated name throws), then `digest`. Same result as `contentHash`.
 */
export class ContentHasher {
  private readonly hasher = createHash('sha256');
  private last: Uint8Array | undefined;

  add(name: string, bytes: Uint8Array): void {
    const utf8 = encoder.encode(name);
    if (this.last !== undefined && Buffer.compare(this.last, utf8) >= 0) throw new Error(`internal: module ${JSON.stringify(name)} hashed out of order`);
    this.last = utf8;
    this.hasher.update(u64be(utf8.length));
    this.hasher.update(utf8);
    this.hasher.update(u64be(bytes.length));
    this.hasher.update(bytes);
  }

  digest(): string {
    return this.hasher.digest('hex');
  }
}

/** SHA-256 hex of the manifest's canonical JSON (keys sorted recursively, no whitespace). */
export function manifestDigest(manifest: Manifest): string {
  return sha256Hex(encoder.encode(canonicalJson(manifest)));
}
