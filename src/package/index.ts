// The .aion package format: the public API of src/package. Knows nothing of the engine or CLI.
import { closeSync, constants as fsConstants, fstatSync, openSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { AionError } from '../errors.js';
import { readPackage, resolveLimits } from './read.js';
import { FileZipSource } from './zip.js';
import type { AionPackage, PackageLimits } from './types.js';

export { DEFAULT_LIMITS, FORMAT_VERSION } from './types.js';
export type { AdditionalWorkflow, AionPackage, JsonSchema, Manifest, ManifestModule, PackageLimits, WorkflowSpec } from './types.js';
export { contentHash, ContentHasher, manifestDigest, sha256Hex, compareUtf8 } from './hash.js';
export { canonicalJson, hasSchemas, packageTypes, parseManifest, serializeManifest, validateManifest, workflowSpec, workflowSpecs } from './manifest.js';
export { checkSchemas, compileSchema, describeSchemaErrors, SchemaCache, type SchemaError, type Validate } from './schema.js';
export { checkLogicalName, isLogicalName, logicalNameProblem, moduleEntryPath, moduleRelativePath } from './names.js';
export { readPackage, scanPackage, resolveLimits, storedArchiveLimits, ArchiveTexts, type ReadHooks, type ScanHooks, type ScannedPackage } from './read.js';
export { bytesSource, extractEntry, FileZipSource, type ZipEntry, type ZipSource } from './zip.js';
export { readProject, parseWorkflowConfig, type WorkflowConfig, type WorkflowProject } from './project.js';
export { packProject, buildArchive, projectManifest, resolveOutputPath, type PackOptions, type PackResult } from './pack.js';

const READ_CHUNK = 1 << 20;

/** A stored archive (ArchiveFiles.open) as a source to read piece by piece; closing it closes the descriptor. */
export function storedSource(stored: { fd: number; size: number; file: string }): FileZipSource {
  return new FileZipSource(stored.fd, stored.size, `the stored archive ${stored.file}`);
}

/** An archive file opened for reading piece by piece (see openArchiveFile). */
export interface OpenArchive {
  source: FileZipSource;
  /** The file's identity and times when opened: `unchanged` compares the open file with it. */
  stat: Stats;
  /** Throws `usage` when the open file has changed (size, times, inode) since it was opened. */
  unchanged(): void;
  close(): void;
}

/**
 * Opens an archive file for reading piece by piece, bounded: opened without blocking (a FIFO
 * cannot hang it) and checked on the open descriptor to be a regular file (`usage` otherwise:
 * FIFOs, devices such as /dev/zero, directories) no larger than the archive limit
 * (`invalid_package`, refused before a byte is read). A missing or unreadable file is `usage`
 * ("no such archive: X"). Never writes. The caller closes it.
 */
export function openArchiveFile(file: string, limits: Partial<PackageLimits> = {}): OpenArchive {
  const resolved = resolveLimits(limits);
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new AionError('usage', code === 'ENOENT' ? `no such archive: ${file}` : `cannot read archive ${file}: ${(error as Error).message}`, {
      hint: code === 'ENOENT' ? 'build one with: aion pack <project_dir>' : undefined,
    });
  }
  try {
    const info = fstatSync(fd);
    checkArchiveStat(file, info, resolved);
    const source = new FileZipSource(fd, info.size, `archive ${file}`);
    return {
      source,
      stat: info,
      unchanged: () => {
        let now: Stats;
        try {
          now = fstatSync(fd);
        } catch (error) {
          throw new AionError('usage', `cannot read archive ${file}: ${(error as Error).message}`);
        }
        if (now.size !== info.size || now.mtimeMs !== info.mtimeMs || now.ctimeMs !== info.ctimeMs || now.ino !== info.ino) {
          throw new AionError('usage', `archive ${file} changed while it was being loaded; nothing was loaded`, { hint: 'load it again once it is complete' });
        }
      },
      close: () => source.close(),
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function checkArchiveStat(file: string, info: Stats, resolved: PackageLimits): void {
  if (!info.isFile()) {
    const kind = info.isFIFO() ? 'a FIFO' : info.isCharacterDevice() || info.isBlockDevice() ? 'a device' : info.isDirectory() ? 'a directory' : info.isSocket() ? 'a socket' : 'not a regular file';
    throw new AionError('usage', `not an archive file: ${file} is ${kind}`, { hint: 'give the path of a .aion file (aion pack builds one)' });
  }
  if (info.size > resolved.maxArchiveBytes) {
    throw new AionError('invalid_package', `archive ${file} is ${info.size} bytes, which exceeds the limit of ${resolved.maxArchiveBytes} bytes`);
  }
}

/**
 * Reads an archive file's bytes, bounded (see openArchiveFile: regular files within the
 * limit only); then at most its size is read, in 1 MiB chunks reported to `onBytes`. Never
 * writes.
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
    checkArchiveStat(file, info, resolved);
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
