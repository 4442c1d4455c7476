// The .aion package format: the public API of src/package. Knows nothing of the engine or CLI.
import { readFile, stat } from 'node:fs/promises';
import { AionError } from '../errors.js';
import { readPackage, resolveLimits } from './read.js';
import type { AionPackage, PackageLimits } from './types.js';

export { DEFAULT_LIMITS, FORMAT_VERSION } from './types.js';
export type { AionPackage, Manifest, ManifestModule, PackageLimits } from './types.js';
export { contentHash, manifestDigest, sha256Hex, compareUtf8 } from './hash.js';
export { canonicalJson, parseManifest, serializeManifest, validateManifest } from './manifest.js';
export { checkLogicalName, isLogicalName, logicalNameProblem, moduleEntryPath, moduleRelativePath } from './names.js';
export { readPackage, resolveLimits, type ReadHooks } from './read.js';
export { readProject, parseWorkflowConfig, type WorkflowConfig, type WorkflowProject } from './project.js';
export { packProject, buildArchive, projectManifest, resolveOutputPath, type PackOptions, type PackResult } from './pack.js';

/**
 * Reads and validates the archive file at `file`. A missing or unreadable file is `usage`
 * ("no such archive: X"); a file over the archive limit is refused before it is read;
 * anything wrong with its content is `invalid_package`. Never writes.
 */
export async function readPackageFile(file: string, limits: Partial<PackageLimits> = {}): Promise<AionPackage> {
  const resolved = resolveLimits(limits);
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new AionError('usage', `no such archive: ${file}`);
    throw new AionError('usage', `cannot read archive ${file}: ${(error as Error).message}`);
  }
  if (!info.isFile()) throw new AionError('usage', `not an archive file: ${file}`);
  if (info.size > resolved.maxArchiveBytes) {
    throw new AionError('invalid_package', `archive ${file} is ${info.size} bytes, which exceeds the limit of ${resolved.maxArchiveBytes} bytes`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new AionError('usage', `cannot read archive ${file}: ${(error as Error).message}`);
  }
  return readPackage(bytes, resolved);
}
