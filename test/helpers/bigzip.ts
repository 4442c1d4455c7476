// A large, valid .aion archive written to disk piece by piece, so that a test can hold a
// 300 MB package without holding 300 MB (twice) in memory: the `hello` package of the
// malformed corpus plus `count` stored data files under src/ of `bytesEach` incompressible
// random bytes (src/ is shipped, never part of the version). Every header comes from the
// package's own zip writer (assembleZip); only offsets are patched in.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import zlib from 'node:zlib';
import { assembleZip, type RawZipEntry } from '../../src/package/zip.js';
import { buildPackage } from './malformed.js';
import { listZip } from '../../src/package/zip.js';
import { DEFAULT_LIMITS } from '../../src/package/types.js';

const CHUNK = 8 * 1024 * 1024;

/** Writes the archive to `file`; returns its size in bytes. */
export function writeLargeArchive(file: string, count: number, bytesEach: number): number {
  // The small part (manifest and modules), taken from a valid archive.
  const small = buildPackage();
  const smallEntries = listZip(small, DEFAULT_LIMITS).map((e) => ({ e, data: small.subarray(e.dataOffset, e.dataOffset + e.compressedSize) }));
  const fd = openSync(file, 'w');
  const centrals: Uint8Array[] = [];
  let pos = 0;
  const put = (bytes: Uint8Array) => {
    writeSync(fd, bytes);
    pos += bytes.length;
  };
  const header = (raw: Omit<RawZipEntry, 'data'>, write: () => void) => {
    const name = new TextEncoder().encode(raw.name as string);
    const headers = assembleZip([{ ...raw, data: new Uint8Array(0) }]);
    const local = headers.subarray(0, 30 + name.length);
    const central = headers.slice(30 + name.length, 30 + name.length + 46 + name.length);
    new DataView(central.buffer).setUint32(42, pos, true);
    centrals.push(central);
    put(local);
    write();
  };
  try {
    for (const { e, data } of smallEntries) {
      header({ name: e.name, method: e.method, crc32: e.crc32, compressedSize: e.compressedSize, size: e.size }, () => put(data));
    }
    for (let i = 0; i < count; i++) {
      // Generated twice from one seed would be costly; held once per file instead (bytesEach).
      const data = randomBytes(bytesEach);
      const crc = zlib.crc32(data);
      header({ name: `src/data-${i}.bin`, method: 0, crc32: crc, compressedSize: bytesEach, size: bytesEach }, () => {
        for (let at = 0; at < data.length; at += CHUNK) put(data.subarray(at, at + CHUNK));
      });
    }
    const cdOffset = pos;
    for (const c of centrals) put(c);
    const eocd = new Uint8Array(22);
    const view = new DataView(eocd.buffer);
    view.setUint32(0, 0x06054b50, true);
    view.setUint16(8, centrals.length, true);
    view.setUint16(10, centrals.length, true);
    view.setUint32(12, pos - cdOffset, true);
    view.setUint32(16, cdOffset, true);
    put(eocd);
  } finally {
    closeSync(fd);
  }
  return pos;
}
