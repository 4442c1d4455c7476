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
  const names = [...modules.keys()].map((name) => ({ name, utf8: encoder.encode(name) }));
  names.sort((a, b) => Buffer.compare(a.utf8, b.utf8));
  const hasher = createHash('sha256');
  for (const { name, utf8 } of names) {
    const bytes = modules.get(name)!;
    hasher.update(u64be(utf8.length));
    hasher.update(utf8);
    hasher.update(u64be(bytes.length));
    hasher.update(bytes);
  }
  return hasher.digest('hex');
}

/** SHA-256 hex of the manifest's canonical JSON (keys sorted recursively, no whitespace). */
export function manifestDigest(manifest: Manifest): string {
  return sha256Hex(encoder.encode(canonicalJson(manifest)));
}
