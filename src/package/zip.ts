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
import { closeSync, readSync } from 'node:fs';
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

/** CRC-32 (IEEE 802.3) of `bytes` as an unsigned 32-bit number: zlib's, native (Node ≥ 20.15). */
export function crc32(bytes: Uint8Array): number {
  return zlib.crc32(bytes) >>> 0;
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

/**
 * Random access to an archive's bytes: in memory (`bytesSource`), or an open file read a piece
 * at a time (`FileZipSource`), so that a large archive is never held whole.
 */
export interface ZipSource {
  readonly size: number;
  /**
   * The `length` bytes at `at` (fewer only past the end of the archive). The result may be a
   * view of a buffer the next read reuses: use it, or copy it, before reading again.
   */
  read(at: number, length: number): Uint8Array;
}

/** An archive held in memory (reads are views of it, valid as long as it is). */
export function bytesSource(bytes: Uint8Array): ZipSource {
  return { size: bytes.length, read: (at, length) => bytes.subarray(at, Math.min(bytes.length, at + length)) };
}

/** Small reads (headers, names) are served from one block read ahead of this size. */
const READ_AHEAD = 8 * 1024;
/** Scratch buffers up to this size are kept for the next read or inflate; larger ones are not. */
const KEEP_SCRATCH = 1 << 20;

/**
 * An archive in an open file of a known size, read with positioned reads (`pread`) into two
 * reused buffers: small reads through an 8 KiB read-ahead block, large ones (an entry's data)
 * into a scratch buffer. Bytes the file no longer has (it shrank since its size was taken)
 * are invalid_package. `close` closes the descriptor.
 */
export class FileZipSource implements ZipSource {
  private readonly block: Buffer = Buffer.allocUnsafe(READ_AHEAD);
  private blockAt = 0;
  private blockLength = 0;
  private scratch: Buffer | undefined;

  constructor(
    readonly fd: number,
    readonly size: number,
    /** Names the file in errors. */
    readonly label = 'the archive file',
  ) {}

  read(at: number, length: number): Uint8Array {
    const end = Math.min(this.size, at + length);
    const n = Math.max(0, end - at);
    if (n === 0) return new Uint8Array(0);
    if (at >= this.blockAt && end <= this.blockAt + this.blockLength) return this.block.subarray(at - this.blockAt, end - this.blockAt);
    if (n > READ_AHEAD) {
      let buffer = this.scratch;
      if (buffer === undefined || buffer.length < n) {
        buffer = Buffer.allocUnsafe(n);
        this.scratch = n <= KEEP_SCRATCH ? buffer : undefined;
      }
      this.pread(buffer, at, n);
      return buffer.subarray(0, n);
    }
    this.blockLength = 0;
    const fill = Math.min(READ_AHEAD, this.size - at);
    this.pread(this.block, at, fill);
    this.blockAt = at;
    this.blockLength = fill;
    return this.block.subarray(0, n);
  }

  private pread(into: Buffer, at: number, n: number): void {
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, into, got, n - got, at + got);
      if (r === 0) throw invalid(`${this.label} ends at ${at + got} bytes, short of its size of ${this.size} (did it change while being read?)`);
      got += r;
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

/** A copy of `b` in memory of its own (Buffer#slice would be a view). */
export function copyOf(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

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
 * Reads only the end of the archive, the central directory one entry at a time and each local
 * header: never an entry's data.
 */
export function listZip(archive: Uint8Array | ZipSource, limits: PackageLimits): ZipEntry[] {
  const src = archive instanceof Uint8Array ? bytesSource(archive) : archive;
  const len = src.size;
  if (len > limits.maxArchiveBytes) {
    throw invalid(`archive is ${len} bytes, which exceeds the limit of ${limits.maxArchiveBytes} bytes`);
  }
  if (len === 0) throw invalid('not a zip archive (the file is empty)');
  const head = src.read(0, 4);

  const startsLikeZip =
    len >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
  if (!startsLikeZip) {
    // 'PK' followed by a cut-off signature is a truncated zip, anything else is not a zip.
    if (len < 4 && head[0] === 0x50 && (len < 2 || head[1] === 0x4b)) throw invalid(`truncated zip archive (only ${len} bytes)`);
    throw invalid('not a zip archive (it does not start with a zip signature)');
  }

  // End of central directory record: scan back over at most a maximal comment.
  const tailAt = Math.max(0, len - EOCD_LEN - MAX_COMMENT);
  // Copied: the reads that follow may reuse the source's buffers.
  const tail = viewOf(copyOf(src.read(tailAt, len - tailAt)));
  const t16 = (at: number) => tail.getUint16(at - tailAt, true);
  const t32 = (at: number) => tail.getUint32(at - tailAt, true);
  let eocd = -1;
  let mismatch: { at: number; commentLength: number } | undefined;
  for (let at = len - EOCD_LEN; at >= tailAt; at--) {
    if (t32(at) !== SIG_EOCD) continue;
    const commentLength = t16(at + 20);
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
  if (eocd >= 20 && viewOf(src.read(eocd - 20, 4)).getUint32(0, true) === SIG_ZIP64_LOCATOR) throw invalid('ZIP64 archives are not supported');
  const disk = t16(eocd + 4);
  const cdDisk = t16(eocd + 6);
  const diskEntries = t16(eocd + 8);
  const count = t16(eocd + 10);
  const cdSize = t32(eocd + 12);
  const cdOffset = t32(eocd + 16);
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
    const header = pos + CENTRAL_LEN > eocd ? undefined : viewOf(src.read(pos, CENTRAL_LEN));
    if (header === undefined || header.getUint32(0, true) !== SIG_CENTRAL) {
      throw invalid(`central directory entry #${index + 1} is missing or damaged (${count} declared)`);
    }
    const u16 = (at: number) => header.getUint16(at, true);
    const u32 = (at: number) => header.getUint32(at, true);
    const madeBy = u16(4);
    const flags = u16(8);
    const method = u16(10);
    const crc = u32(16);
    const compressedSize = u32(20);
    const size = u32(24);
    const nameLength = u16(28);
    const extraLength = u16(30);
    const commentLength = u16(32);
    const diskStart = u16(34);
    const externalAttrs = u32(38);
    const localOffset = u32(42);
    const next = pos + CENTRAL_LEN + nameLength + extraLength;
    if (next + commentLength > eocd) throw invalid(`central directory entry #${index + 1} runs past the central directory`);
    const variable = src.read(pos + CENTRAL_LEN, nameLength + extraLength);
    // Copied: compared with the local header's name after another read.
    const nameBytes = copyOf(variable.subarray(0, nameLength));
    let name: string;
    try {
      name = nameDecoder.decode(nameBytes);
    } catch {
      throw invalid(`central directory entry #${index + 1}: name is not valid UTF-8`);
    }
    const where = `entry ${JSON.stringify(name)}`;
    const extra = variable.subarray(nameLength, nameLength + extraLength);
    pos = next + commentLength;

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
    const local = viewOf(src.read(localOffset, LOCAL_LEN));
    const l16 = (at: number) => local.getUint16(at, true);
    const l32 = (at: number) => local.getUint32(at, true);
    if (l32(0) !== SIG_LOCAL) throw invalid(`${where}: no local header at offset ${localOffset}`);
    const localNameLength = l16(26);
    const localExtraLength = l16(28);
    const dataOffset = localOffset + LOCAL_LEN + localNameLength + localExtraLength;
    const disagree = (field: string, local: number | string, central: number | string) =>
      invalid(`${where}: local header ${field} ${local} disagrees with the central directory (${central})`);
    if (l16(6) !== flags) throw disagree('flags', l16(6), flags);
    if (l16(8) !== method) throw disagree('compression method', l16(8), method);
    if (l32(14) !== crc) throw disagree('CRC-32', hex32(l32(14)), hex32(crc));
    if (l32(18) !== compressedSize) throw disagree('compressed size', l32(18), compressedSize);
    if (l32(22) !== size) throw disagree('size', l32(22), size);
    if (localNameLength !== nameLength) {
      throw invalid(`${where}: local header name disagrees with the central directory`);
    }
    // Within the archive: the local header lies before the central directory (checked above).
    const localVariable = src.read(localOffset + LOCAL_LEN, localNameLength + localExtraLength);
    const localName = localVariable.subarray(0, localNameLength);
    if (Buffer.compare(localName, nameBytes) !== 0) throw invalid(`${where}: local header name disagrees with the central directory`);
    if (hasExtraField(localVariable.subarray(localNameLength), 0x0001)) {
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
 * Inflates one entry listed by `listZip` from the same archive, reading only that entry's
 * data, into a buffer of its own. Inflation (native zlib) stops as soon as the output would
 * exceed the declared size, so a lying header can neither grow memory nor spin; a short
 * result, corrupt deflate data or a CRC-32 mismatch is invalid_package naming the entry.
 */
export function extractEntry(archive: Uint8Array | ZipSource, entry: ZipEntry): Uint8Array {
  const out = inflateEntry(archive, entry);
  return out.buffer === scratchOut?.buffer ? copyOf(out) : out;
}

/**
 * extractEntry into a scratch buffer the next call reuses (entries up to 1 MiB): for readers
 * that look at one entry at a time and keep nothing of it (hashing, checking, streaming).
 */
export function inflateEntry(archive: Uint8Array | ZipSource, entry: ZipEntry): Uint8Array {
  const src = archive instanceof Uint8Array ? bytesSource(archive) : archive;
  const where = `entry ${JSON.stringify(entry.name)}`;
  const raw = src.read(entry.dataOffset, entry.compressedSize);
  let out: Uint8Array;
  if (entry.method === METHOD_STORED) {
    out = copyOf(raw);
  } else {
    // Room for one byte more than declared: producing it proves the entry lies.
    const room = entry.size + 1;
    if (room <= KEEP_SCRATCH) {
      if (scratchOut === undefined || scratchOut.length < room) scratchOut = Buffer.allocUnsafe(Math.min(KEEP_SCRATCH, Math.max(room, 64 * 1024)));
      out = scratchOut.subarray(0, room);
    } else {
      out = Buffer.allocUnsafe(room);
    }
    let produced: number;
    try {
      produced = inflateRawInto(raw, out);
    } catch (error) {
      throw invalid(`${where}: corrupt deflate data (${error instanceof Error ? error.message : String(error)})`);
    }
    if (produced > entry.size) throw invalid(`${where}: inflates to more than its declared ${entry.size} bytes`);
    if (produced !== entry.size) {
      throw invalid(`${where}: inflates to ${produced} bytes, but its header declares ${entry.size}`);
    }
    out = out.subarray(0, produced);
  }
  const actual = crc32(out);
  if (actual !== entry.crc32) throw invalid(`${where}: CRC-32 mismatch (header says ${hex32(entry.crc32)}, data has ${hex32(actual)})`);
  return out;
}

let scratchOut: Buffer | undefined;

/** What node:zlib's own sync functions drive: the native handle of a zlib stream, and its state. */
interface RawHandle {
  handle: { writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void; reset(): void; onerror: (message: string) => void };
  state: Uint32Array;
  error: string | undefined;
}

let rawHandle: RawHandle | null | undefined;

/**
 * Inflates raw deflate data into `out` (at most its length; Z_FINISH, trailing input ignored)
 * and returns the bytes produced; throws zlib's message on corrupt or truncated data. One
 * native inflater is reset and reused for every entry (the sync API would build a stream
 * object and a native inflater per call: a third of the time, and memory churn). Where this
 * Node's zlib does not expose it as expected, each call uses inflateRawSync instead.
 */
function inflateRawInto(raw: Uint8Array, out: Uint8Array): number {
  rawHandle ??= openRawHandle();
  if (rawHandle === null) {
    let result: Buffer;
    try {
      result = zlib.inflateRawSync(raw, { maxOutputLength: out.length, chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, Math.min(out.length, 16 * 1024 * 1024)) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return out.length;
      throw error;
    }
    out.set(result.subarray(0, out.length));
    return result.length;
  }
  const h = rawHandle;
  h.error = undefined;
  h.handle.reset();
  h.handle.writeSync(zlib.constants.Z_FINISH, raw, 0, raw.length, out, 0, out.length);
  if (h.error !== undefined) throw new Error(h.error);
  return out.length - h.state[0]!;
}

function openRawHandle(): RawHandle | null {
  try {
    const engine = zlib.createInflateRaw() as unknown as { _handle?: RawHandle['handle']; _writeState?: unknown };
    const handle = engine._handle;
    const state = engine._writeState;
    if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array) || state.length < 2) return null;
    const h: RawHandle = { handle, state, error: undefined };
    handle.onerror = (message: string) => {
      h.error = message;
    };
    return h;
  } catch {
    return null;
  }
}
