// A small zip container reader and writer. fflate does only the (de)compression; the zip
// structures are parsed and written here, so that output is deterministic and hostile input
// is refused before it costs memory.
//
// Writer: entries in the given order, deflated at a fixed level, with a fixed DOS timestamp
// (1980-01-01 00:00), fixed attributes (regular file 0644, made by Unix), UTF-8 names and no
// extra fields or comments: the same entries give the same bytes on every machine, in every
// time zone (for a given fflate version).
//
// Reader: every failure is AionError('invalid_package') whose message names the entry or the
// field at fault. `listZip` checks the structure and every limit without inflating anything;
// `extractEntry` inflates one entry (node:zlib, native, never past its declared size) and
// verifies its length and CRC-32. Reading never writes anything.
import * as zlib from 'node:zlib';
import { deflateSync } from 'fflate';
import { AionError } from '../errors.js';
import type { PackageLimits } from './types.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const LOCAL_LEN = 30;
const CENTRAL_LEN = 46;
const EOCD_LEN = 22;
const MAX_COMMENT = 0xffff;

/** 1980-01-01 00:00 in MS-DOS date/time format: the earliest a zip can say. */
export const DOS_DATE = (0 << 9) | (1 << 5) | 1;
export const DOS_TIME = 0;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const FLAG_UTF8 = 0x0800;
const HOST_UNIX = 3;
const HOST_DARWIN = 19;
/** Version made by: Unix host, spec 2.0 (so external attributes carry a Unix mode). */
const MADE_BY = (HOST_UNIX << 8) | 20;
const VERSION_NEEDED = 20;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Regular file, mode 0644, in the high 16 bits of the external attributes. */
const FILE_ATTRS = ((S_IFREG | 0o644) << 16) >>> 0;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;
/** Fixed deflate parameters: changing them changes archive bytes (never versions). */
const DEFLATE_OPTIONS = { level: 6, mem: 8 } as const;

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib.crc32 (native) where this Node has it (≥ 20.15), else the table below. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 of `bytes` as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array): number {
  if (nativeCrc32) return nativeCrc32(bytes) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function invalid(message: string): AionError {
  return new AionError('invalid_package', message);
}

function hex32(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface ZipInput {
  name: string;
  data: Uint8Array;
}

/**
 * One entry exactly as it will be laid out. `writeZip` derives these from plain data; tests use
 * them directly to build archives with chosen (even inconsistent) fields.
 */
export interface RawZipEntry {
  name: string | Uint8Array;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** The bytes stored after the local header (compressed data). */
  data: Uint8Array;
  flags?: number;
  versionMadeBy?: number;
  externalAttrs?: number;
  localExtra?: Uint8Array;
  centralExtra?: Uint8Array;
}

const encoder = new TextEncoder();

/** Deflates `data` with the fixed parameters and describes it as a regular-file entry. */
export function deflateEntry(name: string, data: Uint8Array): RawZipEntry {
  const compressed = deflateSync(data, DEFLATE_OPTIONS);
  return { name, method: METHOD_DEFLATE, crc32: crc32(data), compressedSize: compressed.length, size: data.length, data: compressed };
}

/**
 * Builds a deterministic zip of `entries`, in the given order. Throws invalid_package when
 * the result would need ZIP64 (more than 65535 entries or 4 GiB), which we do not write.
 */
export function writeZip(entries: readonly ZipInput[]): Uint8Array {
  return assembleZip(entries.map((e) => deflateEntry(e.name, e.data)));
}

/** The fields local and central headers share, "version needed" through "extra length" (26 bytes). */
function writeSharedFields(view: DataView, at: number, e: RawZipEntry, nameLength: number, extraLength: number): void {
  view.setUint16(at, VERSION_NEEDED, true);
  view.setUint16(at + 2, e.flags ?? FLAG_UTF8, true);
  view.setUint16(at + 4, e.method, true);
  view.setUint16(at + 6, DOS_TIME, true);
  view.setUint16(at + 8, DOS_DATE, true);
  view.setUint32(at + 10, e.crc32 >>> 0, true);
  view.setUint32(at + 14, e.compressedSize >>> 0, true);
  view.setUint32(at + 18, e.size >>> 0, true);
  view.setUint16(at + 22, nameLength, true);
  view.setUint16(at + 24, extraLength, true);
}

/** Lays out raw entries, their central directory and the end record; no checks on fields. */
export function assembleZip(entries: readonly RawZipEntry[], comment: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (entries.length > 0xffff) throw invalid(`cannot write ${entries.length} entries without ZIP64 (at most 65535)`);
  const names = entries.map((e) => (typeof e.name === 'string' ? encoder.encode(e.name) : e.name));
  let localTotal = 0;
  let centralTotal = 0;
  entries.forEach((e, i) => {
    localTotal += LOCAL_LEN + names[i]!.length + (e.localExtra?.length ?? 0) + e.data.length;
    centralTotal += CENTRAL_LEN + names[i]!.length + (e.centralExtra?.length ?? 0);
  });
  const total = localTotal + centralTotal + EOCD_LEN + comment.length;
  if (total > 0xfffffffe) throw invalid(`cannot write a ${total}-byte archive without ZIP64`);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const offsets: number[] = [];
  let pos = 0;
  entries.forEach((e, i) => {
    const name = names[i]!;
    const extra = e.localExtra ?? new Uint8Array(0);
    offsets.push(pos);
    view.setUint32(pos, SIG_LOCAL, true);
    writeSharedFields(view, pos + 4, e, name.length, extra.length);
    out.set(name, pos + LOCAL_LEN);
    out.set(extra, pos + LOCAL_LEN + name.length);
    out.set(e.data, pos + LOCAL_LEN + name.length + extra.length);
    pos += LOCAL_LEN + name.length + extra.length + e.data.length;
  });
  const cdOffset = pos;
  entries.forEach((e, i) => {
    const name = names[i]!;
    const extra = e.centralExtra ?? new Uint8Array(0);
    view.setUint32(pos, SIG_CENTRAL, true);
    view.setUint16(pos + 4, e.versionMadeBy ?? MADE_BY, true);
    writeSharedFields(view, pos + 6, e, name.length, extra.length);
    view.setUint16(pos + 32, 0, true); // comment length
    view.setUint16(pos + 34, 0, true); // disk number start
    view.setUint16(pos + 36, 0, true); // internal attributes
    view.setUint32(pos + 38, e.externalAttrs ?? FILE_ATTRS, true);
    view.setUint32(pos + 42, offsets[i]!, true);
    out.set(name, pos + CENTRAL_LEN);
    out.set(extra, pos + CENTRAL_LEN + name.length);
    pos += CENTRAL_LEN + name.length + extra.length;
  });
  view.setUint32(pos, SIG_EOCD, true);
  view.setUint16(pos + 4, 0, true);
  view.setUint16(pos + 6, 0, true);
  view.setUint16(pos + 8, entries.length, true);
  view.setUint16(pos + 10, entries.length, true);
  view.setUint32(pos + 12, pos - cdOffset, true);
  view.setUint32(pos + 16, cdOffset, true);
  view.setUint16(pos + 20, comment.length, true);
  out.set(comment, pos + EOCD_LEN);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader

/** A checked entry of an archive; its data has not been inflated yet. */
export interface ZipEntry {
  name: string;
  /** 0 (stored) or 8 (deflate). */
  method: number;
  crc32: number;
  compressedSize: number;
  /** Declared inflated size, already checked against the limits. */
  size: number;
  /** Offset of the entry's data in the archive. */
  dataOffset: number;
  /** The name ends with `/` (and the entry has no data). */
  isDirectory: boolean;
}

const nameDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and checks the structure of a zip archive without inflating anything: end record
 * (comment allowed, nothing after it), central directory, and each local header, which must
 * agree with its central entry. Refuses ZIP64, multi-disk archives, encryption, data
 * descriptors, methods other than stored/deflate, symbolic links and other special files,
 * out-of-range or overlapping entries, and any breach of `limits` (archive size, entry count,
 * declared entry size, total declared size, compression ratio above `ratioFloorBytes`).
 */
export function listZip(bytes: Uint8Array, limits: PackageLimits): ZipEntry[] {
  const len = bytes.length;
  if (len > limits.maxArchiveBytes) {
    throw invalid(`archive is ${len} bytes, which exceeds the limit of ${limits.maxArchiveBytes} bytes`);
  }
  if (len === 0) throw invalid('not a zip archive (the file is empty)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);

  const startsLikeZip =
    len >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
  if (!startsLikeZip) {
    // 'PK' followed by a cut-off signature is a truncated zip, anything else is not a zip.
    if (len < 4 && bytes[0] === 0x50 && (len < 2 || bytes[1] === 0x4b)) throw invalid(`truncated zip archive (only ${len} bytes)`);
    throw invalid('not a zip archive (it does not start with a zip signature)');
  }

  // End of central directory record: scan back over at most a maximal comment.
  let eocd = -1;
  let mismatch: { at: number; commentLength: number } | undefined;
  for (let at = len - EOCD_LEN; at >= 0 && at >= len - EOCD_LEN - MAX_COMMENT; at--) {
    if (u32(at) !== SIG_EOCD) continue;
    const commentLength = u16(at + 20);
    if (at + EOCD_LEN + commentLength === len) {
      eocd = at;
      break;
    }
    mismatch ??= { at, commentLength };
  }
  if (eocd < 0) {
    if (mismatch && mismatch.at + EOCD_LEN + mismatch.commentLength < len) {
      throw invalid(`unexpected ${len - mismatch.at - EOCD_LEN - mismatch.commentLength} bytes after the end of the zip archive`);
    }
    throw invalid('truncated zip archive (no end of central directory record)');
  }
  if (eocd >= 20 && u32(eocd - 20) === SIG_ZIP64_LOCATOR) throw invalid('ZIP64 archives are not supported');
  const disk = u16(eocd + 4);
  const cdDisk = u16(eocd + 6);
  const diskEntries = u16(eocd + 8);
  const count = u16(eocd + 10);
  const cdSize = u32(eocd + 12);
  const cdOffset = u32(eocd + 16);
  if (count === 0xffff || diskEntries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw invalid('ZIP64 archives are not supported');
  }
  if (disk !== 0 || cdDisk !== 0 || diskEntries !== count) throw invalid('multi-disk zip archives are not supported');
  if (count > limits.maxEntries) throw invalid(`too many entries: ${count} (the limit is ${limits.maxEntries})`);
  if (cdOffset + cdSize > eocd) throw invalid('truncated zip archive (the central directory lies outside the archive)');
  if (cdOffset + cdSize !== eocd) {
    throw invalid(`central directory ends at offset ${cdOffset + cdSize}, but its end record is at ${eocd}`);
  }

  const entries: ZipEntry[] = [];
  const spans: { start: number; end: number; name: string }[] = [];
  let totalSize = 0;
  let pos = cdOffset;
  for (let index = 0; index < count; index++) {
    if (pos + CENTRAL_LEN > eocd || u32(pos) !== SIG_CENTRAL) {
      throw invalid(`central directory entry #${index + 1} is missing or damaged (${count} declared)`);
    }
    const madeBy = u16(pos + 4);
    const flags = u16(pos + 8);
    const method = u16(pos + 10);
    const crc = u32(pos + 16);
    const compressedSize = u32(pos + 20);
    const size = u32(pos + 24);
    const nameLength = u16(pos + 28);
    const extraLength = u16(pos + 30);
    const commentLength = u16(pos + 32);
    const diskStart = u16(pos + 34);
    const externalAttrs = u32(pos + 38);
    const localOffset = u32(pos + 42);
    const next = pos + CENTRAL_LEN + nameLength + extraLength + commentLength;
    if (next > eocd) throw invalid(`central directory entry #${index + 1} runs past the central directory`);
    const nameBytes = bytes.subarray(pos + CENTRAL_LEN, pos + CENTRAL_LEN + nameLength);
    let name: string;
    try {
      name = nameDecoder.decode(nameBytes);
    } catch {
      throw invalid(`central directory entry #${index + 1}: name is not valid UTF-8`);
    }
    const where = `entry ${JSON.stringify(name)}`;
    const extra = bytes.subarray(pos + CENTRAL_LEN + nameLength, pos + CENTRAL_LEN + nameLength + extraLength);
    pos = next;

    if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff || hasExtraField(extra, 0x0001)) {
      throw invalid(`${where}: ZIP64 entries are not supported`);
    }
    if (diskStart !== 0) throw invalid(`${where}: multi-disk zip archives are not supported`);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) throw invalid(`${where}: encrypted entries are not supported`);
    if (flags & FLAG_DATA_DESCRIPTOR) throw invalid(`${where}: data descriptors (general purpose flag bit 3) are not supported`);
    if (method !== METHOD_STORED && method !== METHOD_DEFLATE) {
      throw invalid(`${where}: unsupported compression method ${method} (only 0 stored and 8 deflate)`);
    }
    const isDirectory = name.endsWith('/');
    const host = madeBy >>> 8;
    if (host === HOST_UNIX || host === HOST_DARWIN) {
      const type = (externalAttrs >>> 16) & S_IFMT;
      if (type === S_IFLNK) throw invalid(`${where}: symbolic links are not allowed`);
      if (type !== 0 && type !== S_IFREG && !(type === S_IFDIR && isDirectory)) {
        throw invalid(`${where}: special file (mode ${(externalAttrs >>> 16).toString(8)}) is not allowed`);
      }
    }
    if (isDirectory && (size !== 0 || compressedSize > 2)) throw invalid(`${where}: directory entry has data`);
    if (method === METHOD_STORED && compressedSize !== size) {
      throw invalid(`${where}: stored entry declares ${compressedSize} stored bytes but ${size} bytes of content`);
    }
    if (size > limits.maxEntryBytes) {
      throw invalid(`${where}: declared size ${size} bytes exceeds the per-entry limit of ${limits.maxEntryBytes} bytes`);
    }
    totalSize += size;
    if (totalSize > limits.maxInflatedBytes) {
      throw invalid(`${where}: total declared inflated size ${totalSize} bytes exceeds the limit of ${limits.maxInflatedBytes} bytes`);
    }
    if (size > limits.ratioFloorBytes && size > compressedSize * limits.maxCompressionRatio) {
      const ratio = compressedSize === 0 ? 'infinite' : (size / compressedSize).toFixed(0);
      throw invalid(`${where}: compression ratio ${ratio}:1 exceeds the limit of ${limits.maxCompressionRatio}:1 (zip bomb?)`);
    }

    // The local header must exist, lie before the central directory and agree with this entry.
    if (localOffset + LOCAL_LEN > cdOffset) throw invalid(`${where}: local header offset ${localOffset} is out of range`);
    if (u32(localOffset) !== SIG_LOCAL) throw invalid(`${where}: no local header at offset ${localOffset}`);
    const localNameLength = u16(localOffset + 26);
    const localExtraLength = u16(localOffset + 28);
    const dataOffset = localOffset + LOCAL_LEN + localNameLength + localExtraLength;
    const disagree = (field: string, local: number | string, central: number | string) =>
      invalid(`${where}: local header ${field} ${local} disagrees with the central directory (${central})`);
    if (u16(localOffset + 6) !== flags) throw disagree('flags', u16(localOffset + 6), flags);
    if (u16(localOffset + 8) !== method) throw disagree('compression method', u16(localOffset + 8), method);
    if (u32(localOffset + 14) !== crc) throw disagree('CRC-32', hex32(u32(localOffset + 14)), hex32(crc));
    if (u32(localOffset + 18) !== compressedSize) throw disagree('compressed size', u32(localOffset + 18), compressedSize);
    if (u32(localOffset + 22) !== size) throw disagree('size', u32(localOffset + 22), size);
    if (localNameLength !== nameLength) {
      throw invalid(`${where}: local header name disagrees with the central directory`);
    }
    const localName = bytes.subarray(localOffset + LOCAL_LEN, localOffset + LOCAL_LEN + localNameLength);
    if (Buffer.compare(localName, nameBytes) !== 0) throw invalid(`${where}: local header name disagrees with the central directory`);
    if (hasExtraField(bytes.subarray(localOffset + LOCAL_LEN + localNameLength, dataOffset), 0x0001)) {
      throw invalid(`${where}: ZIP64 entries are not supported`);
    }
    if (dataOffset + compressedSize > cdOffset) {
      throw invalid(`${where}: data (${compressedSize} bytes at offset ${dataOffset}) is out of range`);
    }
    spans.push({ start: localOffset, end: dataOffset + compressedSize, name });
    entries.push({ name, method, crc32: crc, compressedSize, size, dataOffset, isDirectory });
  }
  if (pos !== eocd) throw invalid(`central directory has ${eocd - pos} unexpected trailing bytes`);

  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.start < spans[i - 1]!.end) {
      throw invalid(`entry ${JSON.stringify(spans[i]!.name)} overlaps entry ${JSON.stringify(spans[i - 1]!.name)}`);
    }
  }
  return entries;
}

/** Whether a zip extra-field block holds a field with `id` (tolerates a malformed tail). */
function hasExtraField(extra: Uint8Array, id: number): boolean {
  for (let at = 0; at + 4 <= extra.length; ) {
    const fieldId = extra[at]! | (extra[at + 1]! << 8);
    const fieldLength = extra[at + 2]! | (extra[at + 3]! << 8);
    if (fieldId === id) return true;
    at += 4 + fieldLength;
  }
  return false;
}

/**
 * Inflates one entry listed by `listZip` from the same `bytes`. Inflation (native zlib) stops
 * as soon as the output would exceed the declared size, so a lying header can neither grow
 * memory nor spin; a short result, corrupt deflate data or a CRC-32 mismatch is
 * invalid_package naming the entry.
 */
export function extractEntry(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const where = `entry ${JSON.stringify(entry.name)}`;
  const raw = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
  let out: Uint8Array;
  if (entry.method === METHOD_STORED) {
    out = raw.slice();
  } else {
    try {
      // One output chunk of the declared size: no growing and no concatenation on the way.
      const limit = Math.max(1, entry.size);
      out = zlib.inflateRawSync(raw, { maxOutputLength: limit, chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, Math.min(limit, 16 * 1024 * 1024)) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw invalid(`${where}: inflates to more than its declared ${entry.size} bytes`);
      }
      throw invalid(`${where}: corrupt deflate data (${error instanceof Error ? error.message : String(error)})`);
    }
    if (out.length > entry.size) throw invalid(`${where}: inflates to more than its declared ${entry.size} bytes`);
    if (out.length !== entry.size) {
      throw invalid(`${where}: inflates to ${out.length} bytes, but its header declares ${entry.size}`);
    }
  }
  const actual = crc32(out);
  if (actual !== entry.crc32) throw invalid(`${where}: CRC-32 mismatch (header says ${hex32(entry.crc32)}, data has ${hex32(actual)})`);
  return out;
}
