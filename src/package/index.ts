// The .aion package format: the public API of src/package. Knows nothing of the engine or CLI.
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { AionError } from '../errors.js';
import { readPackage, resolveLimits } from './read.js';
import type { AionPackage, PackageLimits } from './types.js';

export { DEFAULT_LIMITS, FORMAT_VERSION } from './types.js';
export type { AdditionalWorkflow, AionPackage, JsonSchema, Manifest, ManifestModule, PackageLimits, WorkflowSpec } from './types.js';
export { contentHash, manifestDigest, sha256Hex, compareUtf8 } from './hash.js';
export { canonicalJson, hasSchemas, packageTypes, parseManifest, serializeManifest, validateManifest, workflowSpec, workflowSpecs } from './manifest.js';
export { checkSchemas, compileSchema, describeSchemaErrors, SchemaCache, type SchemaError, type Validate } from './schema.js';
export { checkLogicalName, isLogicalName, logicalNameProblem, moduleEntryPath, moduleRelativePath } from './names.js';
export { readPackage, resolveLimits, storedArchiveLimits, type ReadHooks } from './read.js';
export { readProject, parseWorkflowConfig, type WorkflowConfig, type WorkflowProject } from './project.js';
export { packProject, buildArchive, projectManifest, resolveOutputPath, type PackOptions, type PackResult } from './pack.js';

const READ_CHUNK = 1 << 20;

/**
 * Reads an archive file's bytes, bounded: opened without blocking (a FIFO cannot hang the
 * read) and checked on the open descriptor to be a regular file (`usage` otherwise: FIFOs,
 * devices such as /dev/zero, directories) no larger than the archive limit (`invalid_package`,
 * refused before a byte is read); then at most its size is read, in 1 MiB chunks reported to
 * `onBytes`. A missing or unreadable file is `usage` ("no such archive: X"). Never writes.
 */
export async function readArchiveBytes(file: string, limits: Partial<PackageLimits> = {}, onBytes?: (bytes: number, total: number) => void): Promise<Uint8Array> {
  const resolved = resolveLimits(limits);
  let handle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new AionError('usage', code === 'ENOENT' ? `no such archive: ${file}` : `cannot read archive ${file}: ${(error as Error).message}`, {
      hint: code === 'ENOENT' ? 'build one with: aion pack <project_dir>' : undefined,
    });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      const kind = info.isFIFO() ? 'a FIFO' : info.isCharacterDevice() || info.isBlockDevice() ? 'a device' : info.isDirectory() ? 'a directory' : info.isSocket() ? 'a socket' : 'not a regular file';
      throw new AionError('usage', `not an archive file: ${file} is ${kind}`, { hint: 'give the path of a .aion file (aion pack builds one)' });
    }
    if (info.size > resolved.maxArchiveBytes) {
      throw new AionError('invalid_package', `archive ${file} is ${info.size} bytes, which exceeds the limit of ${resolved.maxArchiveBytes} bytes`);
    }
    const total = info.size;
    const bytes = new Uint8Array(total);
    let n = 0;
    while (n < total) {
      const { bytesRead } = await handle.read(bytes, n, Math.min(READ_CHUNK, total - n), n);
      if (bytesRead === 0) break;
      n += bytesRead;
      onBytes?.(n, total);
    }
    return n === total ? bytes : bytes.subarray(0, n);
  } catch (error) {
    if (error instanceof AionError) throw error;
    throw new AionError('usage', `cannot read archive ${file}: ${(error as Error).message}`);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Reads (see readArchiveBytes: bounded, regular files only) and validates the archive file
 * at `file`; anything wrong with its content is `invalid_package`. Never writes.
 */
export async function readPackageFile(file: string, limits: Partial<PackageLimits> = {}): Promise<AionPackage> {
  return readPackage(await readArchiveBytes(file, limits), resolveLimits(limits));
}
