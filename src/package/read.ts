// Reading a .aion archive into a validated AionPackage. A read is pure: it never writes
// anything, and any failure is AionError('invalid_package') naming the entry or field at fault.
//
// Archive layout (what `aion pack` writes, and all a reader accepts):
//   manifest.json            the Manifest (types.ts); exactly its keys
//   modules/<a>/<b>.js       module `a@b`, UTF-8 JavaScript; part of the version
//   src/<relative path>      optional files shipped along; never part of the version
// Directory entries (`name/`, no data) are ignored.
import { isUtf8 } from 'node:buffer';
import { AionError } from '../errors.js';
import { ContentHasher, compareUtf8, manifestDigest } from './hash.js';
import { parseManifest } from './manifest.js';
import { archivePathProblem, moduleEntryPath, moduleNameFromRelativePath } from './names.js';
import { DEFAULT_LIMITS, type AionPackage, type Manifest, type PackageLimits } from './types.js';
import { copyOf, extractEntry, inflateEntry, listZip, type ZipEntry, type ZipSource } from './zip.js';

export const MANIFEST_ENTRY = 'manifest.json';
const MODULES_PREFIX = 'modules/';
const SOURCES_PREFIX = 'src/';

function invalid(message: string): AionError {
  return new AionError('invalid_package', message);
}

export function resolveLimits(limits: Partial<PackageLimits> = {}): PackageLimits {
  const merged = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limits) as [keyof PackageLimits, number | undefined][]) {
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}

/**
 * The limits to re-read an archive the state directory already holds: it was admitted at load
 * under the operator's limits (`--max-*`, which are not recorded), so its own size, entry count
 * and inflated size are not held against it again; every other check (entry sizes, ratio,
 * names, hash) still applies.
 */
export function storedArchiveLimits(archiveBytes: number): Partial<PackageLimits> {
  return {
    maxArchiveBytes: Math.max(DEFAULT_LIMITS.maxArchiveBytes, archiveBytes),
    maxInflatedBytes: Number.MAX_SAFE_INTEGER,
    maxEntries: 0xffff,
  };
}

/** Optional notifications from `readPackage` and `scanPackage`. */
export interface ReadHooks {
  /** Called once the archive's structure and manifest are valid, before the content hash. */
  beforeHash?: () => void;
}

export interface ScanHooks extends ReadHooks {
  /**
   * Each module, once inflated and checked (CRC-32, declared size, UTF-8), in ascending UTF-8
   * byte order of name. `bytes` is valid only during the call (the scan reuses its buffer):
   * copy what must be kept. May throw to stop the scan.
   */
  onModule?: (name: string, bytes: Uint8Array) => void;
  /** Each file under src/ (path relative to src/), once inflated and checked; valid during the call only. */
  onSource?: (path: string, bytes: Uint8Array) => void;
  /** Archive bytes inflated so far, of the total compressed size of the entries. */
  onProgress?: (done: number, total: number) => void;
}

/** A validated archive, described but not held: where each of its entries lies. */
export interface ScannedPackage {
  manifest: Manifest;
  /** Content hash (== manifest.version). */
  version: string;
  manifestDigest: string;
  /** Module entries by logical name, in ascending byte order of name. */
  modules: Map<string, ZipEntry>;
  /** Files under src/ by path relative to src/, in ascending byte order of path. */
  sources: Map<string, ZipEntry>;
  /** Size of the archive. */
  archiveBytes: number;
}

/**
 * Validates an archive completely, entry by entry, without holding it: zip structure and
 * limits (before inflating anything), entry names (no traversal, absolute paths, backslashes,
 * duplicates, case-only duplicates or unexpected entries), module names, manifest, the
 * manifest's module list against the archive's entries, the entry module; then each module is
 * inflated alone (bounded by its declared size), checked to be UTF-8 and of the manifest's
 * size, added to the content hash and handed to `onModule`, then each src/ file; last, the
 * declared version is checked against the computed content hash. Memory: the central directory's entries plus one entry at a time.
 */
export function scanPackage(source: Uint8Array | ZipSource, limits: Partial<PackageLimits> = {}, hooks: ScanHooks = {}): ScannedPackage {
  const resolved = resolveLimits(limits);
  const entries = listZip(source, resolved);
  const size = source instanceof Uint8Array ? source.length : source.size;

  // Classify every entry by name before inflating anything.
  let manifestEntry: ZipEntry | undefined;
  const moduleEntries = new Map<string, ZipEntry>();
  const sourceEntries = new Map<string, ZipEntry>();
  const exact = new Set<string>();
  const folded = new Map<string, string>();
  const files = new Set<string>();
  for (const entry of entries) {
    const where = `entry ${JSON.stringify(entry.name)}`;
    const problem = archivePathProblem(entry.name);
    if (problem !== null) throw invalid(`${where} ${problem}`);
    if (exact.has(entry.name)) throw invalid(`duplicate ${where}`);
    const lower = entry.name.toLowerCase();
    const twin = folded.get(lower);
    if (twin !== undefined) throw invalid(`entries ${JSON.stringify(twin)} and ${JSON.stringify(entry.name)} differ only in case`);
    exact.add(entry.name);
    folded.set(lower, entry.name);
    if (entry.isDirectory) continue;
    files.add(entry.name);
    if (entry.name === MANIFEST_ENTRY) {
      manifestEntry = entry;
    } else if (entry.name.startsWith(MODULES_PREFIX)) {
      const name = moduleNameFromRelativePath(entry.name.slice(MODULES_PREFIX.length), where);
      moduleEntries.set(name, entry);
    } else if (entry.name.startsWith(SOURCES_PREFIX)) {
      sourceEntries.set(entry.name.slice(SOURCES_PREFIX.length), entry);
    } else {
      throw invalid(`unexpected ${where} (allowed: manifest.json, modules/<name>.js, src/<path>)`);
    }
  }
  // A file may not also be a directory of another entry (`src/a` and `src/a/b`).
  for (const name of files) {
    for (let cut = name.indexOf('/'); cut > 0; cut = name.indexOf('/', cut + 1)) {
      if (files.has(name.slice(0, cut))) throw invalid(`entry ${JSON.stringify(name)} lies inside file entry ${JSON.stringify(name.slice(0, cut))}`);
    }
  }
  if (manifestEntry === undefined) throw invalid(`missing ${MANIFEST_ENTRY}`);
  if (manifestEntry.size > resolved.maxManifestBytes) {
    throw invalid(`${MANIFEST_ENTRY}: declared size ${manifestEntry.size} bytes exceeds the manifest limit of ${resolved.maxManifestBytes} bytes`);
  }

  const manifest = parseManifest(extractEntry(source, manifestEntry), resolved.maxManifestBytes);

  // The manifest's module list against the archive's entries (each module's size is checked
  // once it is inflated: an entry whose header lies about it is refused as such first).
  if (!moduleEntries.has(manifest.entry_module)) {
    throw invalid(`entry module ${JSON.stringify(manifest.entry_module)} (${moduleEntryPath(manifest.entry_module)}) is missing from the archive`);
  }
  // Every additional type's entry module too: a manifest whose extra entries lie is refused.
  (manifest.additional_workflows ?? []).forEach((w, i) => {
    if (!moduleEntries.has(w.entry_module)) {
      throw invalid(`manifest.json additional_workflows[${i}] (${JSON.stringify(w.workflow_type)}): entry module ${JSON.stringify(w.entry_module)} (${moduleEntryPath(w.entry_module)}) is missing from the archive`);
    }
  });
  const listed = new Map<string, number>();
  for (const { name, bytes: declared } of manifest.modules) {
    listed.set(name, declared);
    if (!moduleEntries.has(name)) throw invalid(`manifest.json lists module ${JSON.stringify(name)}, but the archive has no entry '${moduleEntryPath(name)}'`);
  }
  for (const name of moduleEntries.keys()) {
    if (!listed.has(name)) throw invalid(`entry '${moduleEntryPath(name)}' (module ${JSON.stringify(name)}) is not listed in manifest.json modules`);
  }

  hooks.beforeHash?.();
  const modules = new Map<string, ZipEntry>();
  const sources = new Map<string, ZipEntry>();
  let total = 0;
  for (const e of moduleEntries.values()) total += e.compressedSize;
  for (const e of sourceEntries.values()) total += e.compressedSize;
  let done = 0;
  const hasher = new ContentHasher();
  for (const name of [...moduleEntries.keys()].sort(compareUtf8)) {
    const entry = moduleEntries.get(name)!;
    const data = inflateEntry(source, entry);
    // Validated in place: decoding 2,000 modules only to check them would double the memory.
    if (!isUtf8(data)) throw invalid(`entry ${JSON.stringify(entry.name)}: module text is not valid UTF-8`);
    if (data.length !== listed.get(name)) {
      throw invalid(`module ${JSON.stringify(name)}: manifest.json says ${listed.get(name)} bytes, entry '${moduleEntryPath(name)}' has ${data.length}`);
    }
    hasher.add(name, data);
    hooks.onModule?.(name, data);
    modules.set(name, entry);
    done += entry.compressedSize;
    hooks.onProgress?.(done, total);
  }
  for (const path of [...sourceEntries.keys()].sort(compareUtf8)) {
    const entry = sourceEntries.get(path)!;
    const data = inflateEntry(source, entry);
    hooks.onSource?.(path, data);
    sources.set(path, entry);
    done += entry.compressedSize;
    hooks.onProgress?.(done, total);
  }

  const version = hasher.digest();
  if (version !== manifest.version) {
    throw invalid(`manifest.json version ${manifest.version} does not match the content hash of the modules (${version})`);
  }
  return { manifest, version, manifestDigest: manifestDigest(manifest), modules, sources, archiveBytes: size };
}

/**
 * Validates an archive completely (see scanPackage) and returns it in memory, every module
 * and src/ file inflated.
 */
export function readPackage(bytes: Uint8Array, limits: Partial<PackageLimits> = {}, hooks: ReadHooks = {}): AionPackage {
  const modules = new Map<string, Uint8Array>();
  const sources = new Map<string, Uint8Array>();
  const scanned = scanPackage(bytes, limits, {
    beforeHash: hooks.beforeHash,
    onModule: (name, data) => void modules.set(name, copyOf(data)),
    onSource: (path, data) => void sources.set(path, copyOf(data)),
  });
  return { manifest: scanned.manifest, version: scanned.version, manifestDigest: scanned.manifestDigest, modules, sources, archiveBytes: bytes.length };
}

/**
 * The module texts of a scanned archive, each inflated from it (and its CRC-32 checked) when
 * asked: what a module registry reads a version's sources through. `rebind` moves it to a copy
 * of the same bytes (the stored archive file, once a load has written it).
 */
export class ArchiveTexts {
  constructor(
    private source: ZipSource & { close?(): void },
    private readonly entries: ReadonlyMap<string, ZipEntry>,
    /** Whether `close` closes the source. */
    private owned: boolean,
  ) {}

  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (entry === undefined) throw invalid(`the archive has no module ${JSON.stringify(name)}`);
    return extractEntry(this.source, entry);
  }

  /** Reads from `source` (the same archive bytes) from now on, and owns it. */
  rebind(source: ZipSource & { close?(): void }): void {
    if (this.owned) this.source.close?.();
    this.source = source;
    this.owned = true;
  }

  close(): void {
    if (this.owned) this.source.close?.();
    this.owned = false;
  }
}
