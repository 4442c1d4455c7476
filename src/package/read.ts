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
import { contentHash, compareUtf8, manifestDigest } from './hash.js';
import { parseManifest } from './manifest.js';
import { archivePathProblem, moduleEntryPath, moduleNameFromRelativePath } from './names.js';
import { DEFAULT_LIMITS, type AionPackage, type PackageLimits } from './types.js';
import { extractEntry, listZip, type ZipEntry } from './zip.js';

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
export function storedArchiveLimits(bytes: Uint8Array): Partial<PackageLimits> {
  return {
    maxArchiveBytes: Math.max(DEFAULT_LIMITS.maxArchiveBytes, bytes.length),
    maxInflatedBytes: Number.MAX_SAFE_INTEGER,
    maxEntries: 0xffff,
  };
}

/** Optional notifications from `readPackage` (progress views). */
export interface ReadHooks {
  /** Called once the archive's structure and manifest are valid, before the content hash. */
  beforeHash?: () => void;
}

/**
 * Validates an archive completely and returns it in memory: zip structure and limits (before
 * inflating anything), entry names (no traversal, absolute paths, backslashes, duplicates,
 * case-only duplicates or unexpected entries), module names, manifest, UTF-8 module text,
 * the manifest's module list against the archive, the entry module, and the declared version
 * against the computed content hash.
 */
export function readPackage(bytes: Uint8Array, limits: Partial<PackageLimits> = {}, hooks: ReadHooks = {}): AionPackage {
  const resolved = resolveLimits(limits);
  const entries = listZip(bytes, resolved);

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

  const manifest = parseManifest(extractEntry(bytes, manifestEntry), resolved.maxManifestBytes);

  const modules = new Map<string, Uint8Array>();
  for (const name of [...moduleEntries.keys()].sort(compareUtf8)) {
    const entry = moduleEntries.get(name)!;
    const data = extractEntry(bytes, entry);
    // Validated in place: decoding 2,000 modules only to check them would double the memory.
    if (!isUtf8(data)) throw invalid(`entry ${JSON.stringify(entry.name)}: module text is not valid UTF-8`);
    modules.set(name, data);
  }
  const sources = new Map<string, Uint8Array>();
  for (const path of [...sourceEntries.keys()].sort(compareUtf8)) {
    sources.set(path, extractEntry(bytes, sourceEntries.get(path)!));
  }

  if (!modules.has(manifest.entry_module)) {
    throw invalid(`entry module ${JSON.stringify(manifest.entry_module)} (${moduleEntryPath(manifest.entry_module)}) is missing from the archive`);
  }
  // Every additional type's entry module too: a manifest whose extra entries lie is refused.
  (manifest.additional_workflows ?? []).forEach((w, i) => {
    if (!modules.has(w.entry_module)) {
      throw invalid(`manifest.json additional_workflows[${i}] (${JSON.stringify(w.workflow_type)}): entry module ${JSON.stringify(w.entry_module)} (${moduleEntryPath(w.entry_module)}) is missing from the archive`);
    }
  });
  const listed = new Set<string>();
  for (const { name, bytes: size } of manifest.modules) {
    listed.add(name);
    const data = modules.get(name);
    if (data === undefined) throw invalid(`manifest.json lists module ${JSON.stringify(name)}, but the archive has no entry '${moduleEntryPath(name)}'`);
    if (data.length !== size) {
      throw invalid(`module ${JSON.stringify(name)}: manifest.json says ${size} bytes, entry '${moduleEntryPath(name)}' has ${data.length}`);
    }
  }
  for (const name of modules.keys()) {
    if (!listed.has(name)) throw invalid(`entry '${moduleEntryPath(name)}' (module ${JSON.stringify(name)}) is not listed in manifest.json modules`);
  }

  hooks.beforeHash?.();
  const version = contentHash(modules);
  if (version !== manifest.version) {
    throw invalid(`manifest.json version ${manifest.version} does not match the content hash of the modules (${version})`);
  }
  return { manifest, version, manifestDigest: manifestDigest(manifest), modules, sources, archiveBytes: bytes.length };
}
