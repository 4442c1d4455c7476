// The archives of loaded versions, stored outside LevelDB as content-addressed files:
// `<state>/archives/<version>.aion`, one per package version (the version is the content hash
// of its modules, so every type a version serves shares its file). A file is written and made
// durable before the batch that references it commits (temp name in the same directory, fsync,
// rename, fsync the directory), and removed only after the batch that drops its last
// reference has committed: a crash in between leaves an orphan (a file no package row names)
// or a temp file, never a row without its file. Orphans are removed when a writable engine
// opens the directory and by `aion doctor --repair`. Files 0600, the directory 0700.
//
// Callers hold the state directory (its LevelDB lock) while writing or removing, so no other
// process can see a file between its write and its batch, and two writers never race on one.
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, mkdirSync, openSync, read, readdirSync } from 'node:fs';
import { open, rename, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AionError } from '../errors.js';
import { faultPoint } from '../faults.js';

export const ARCHIVES_DIR = 'archives';
const SUFFIX = '.aion';
const TEMP_PREFIX = '.tmp-';
const VERSION = /^[0-9a-f]{64}$/;
/** Bytes copied per read/write when an archive is copied from an open file. */
const COPY_CHUNK = 1 << 20;

/**
 * What to store: an open archive file (copied from its descriptor, never by path; `unchanged`
 * runs once it is copied and may throw to stop the write before the rename) or bytes.
 */
export type ArchiveInput = { fd: number; size: number; unchanged?: () => void } | { bytes: Uint8Array };

/** A stored archive opened for reading. */
export interface StoredArchive {
  fd: number;
  size: number;
  file: string;
}

/** The files of the archives directory, by kind. */
export interface ArchiveListing {
  /** Versions with a stored archive. */
  versions: string[];
  /** Temp files a write that never finished left behind. */
  temps: string[];
  /** Anything else (aion never writes it). */
  others: string[];
}

export class ArchiveFiles {
  readonly dir: string;

  constructor(readonly stateDir: string) {
    this.dir = path.join(stateDir, ARCHIVES_DIR);
  }

  /** The stored archive's path; `internal` for a string that is not a version. */
  pathOf(version: string): string {
    if (!VERSION.test(version)) throw new AionError('internal', `not a package version: ${JSON.stringify(version)}`);
    return path.join(this.dir, version + SUFFIX);
  }

  /**
   * Stores the archive of `version` durably, replacing any file of that version: writes it
   * under a temp name (0600) in the archives directory, fsyncs it, renames it into place and
   * fsyncs the directory. On any failure the temp file is removed and `store` is thrown
   * (naming a full disk as such); an earlier file of the version is left as it was.
   */
  async write(version: string, input: ArchiveInput): Promise<void> {
    const target = this.pathOf(version);
    const temp = path.join(this.dir, `${TEMP_PREFIX}${version.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    let created = false;
    try {
      await this.ensureDir();
      const out = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      created = true;
      try {
        if ('bytes' in input) {
          await out.writeFile(input.bytes);
        } else {
          const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, input.size)));
          let at = 0;
          while (at < input.size) {
            const want = Math.min(buffer.length, input.size - at);
            const got = await readAt(input.fd, buffer, want, at);
            if (got === 0) throw new AionError('usage', `the archive ended at ${at} bytes while being stored, short of its ${input.size} (did it change?)`);
            let written = 0;
            while (written < got) written += (await out.write(buffer, written, got - written)).bytesWritten;
            at += got;
          }
          input.unchanged?.();
        }
        await out.sync();
      } finally {
        await out.close();
      }
      faultPoint('load.archive-synced');
      await rename(temp, target);
      created = false;
      await syncDir(this.dir);
    } catch (error) {
      if (created) await unlink(temp).catch(() => {});
      if (error instanceof AionError) throw error;
      throw await this.writeError(version, error as NodeJS.ErrnoException);
    }
  }

  private async writeError(version: string, error: NodeJS.ErrnoException): Promise<AionError> {
    if (error.code === 'ENOSPC' || error.code === 'EDQUOT') {
      let free: number | undefined;
      try {
        const st = await statfs(this.stateDir);
        free = Number(st.bavail) * Number(st.bsize);
      } catch {
        free = undefined;
      }
      return new AionError('store', `no space left to store the archive of ${version.slice(0, 12)} in ${this.dir}${free === undefined ? '' : ` (${(free / (1 << 20)).toFixed(1)} MiB free)`}; nothing was loaded`, {
        details: { state_dir: this.stateDir, ...(free === undefined ? {} : { free_bytes: free }) },
        hint: 'free space on that filesystem (or move the state directory), then retry',
        cause: error,
      });
    }
    return new AionError('store', `could not store the archive of ${version.slice(0, 12)} in ${this.dir}: ${error.message}; nothing was loaded`, { cause: error });
  }

  /** Creates the archives directory (0700) when missing, and makes its entry durable. */
  private async ensureDir(): Promise<void> {
    try {
      mkdirSync(this.dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw error;
    }
    await syncDir(this.stateDir);
  }

  /**
   * Opens the stored archive of `version` for reading (regular files only, not followed through
   * a symlink): its descriptor and size, for a FileZipSource; undefined when there is none.
   * `store` when it cannot be opened. The caller closes the descriptor.
   */
  open(version: string): StoredArchive | undefined {
    const file = this.pathOf(version);
    let fd: number;
    try {
      fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AionError('store', `cannot read the stored archive ${file}: ${(error as Error).message}`, { cause: error });
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new AionError('store', `the stored archive ${file} is not a regular file`);
      return { fd, size: st.size, file };
    } catch (error) {
      closeSync(fd);
      if (error instanceof AionError) throw error;
      throw new AionError('store', `cannot read the stored archive ${file}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Whether a file is stored for `version`. */
  has(version: string): boolean {
    return this.list().versions.includes(version);
  }

  /** Removes the stored archive of `version` (none is fine) and makes that durable. Fails `store`. */
  async remove(version: string): Promise<void> {
    await this.removeName(path.basename(this.pathOf(version)));
  }

  private async removeName(name: string): Promise<void> {
    try {
      await unlink(path.join(this.dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new AionError('store', `could not remove ${path.join(this.dir, name)}: ${(error as Error).message}`, { cause: error });
    }
    await syncDir(this.dir);
  }

  /** The archives directory's files by kind (empty when it does not exist). */
  list(): ArchiveListing {
    const listing: ArchiveListing = { versions: [], temps: [], others: [] };
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return listing;
      throw new AionError('store', `cannot read ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
    for (const name of names.sort()) {
      if (name.endsWith(SUFFIX) && VERSION.test(name.slice(0, -SUFFIX.length))) listing.versions.push(name.slice(0, -SUFFIX.length));
      else if (name.startsWith(TEMP_PREFIX)) listing.temps.push(name);
      else listing.others.push(name);
    }
    return listing;
  }

  /** Stored archives of versions not in `referenced`, and leftover temp files: file names. */
  orphans(referenced: ReadonlySet<string>): string[] {
    const { versions, temps } = this.list();
    return [...versions.filter((v) => !referenced.has(v)).map((v) => v + SUFFIX), ...temps];
  }

  /** Removes what `orphans` names; returns the names removed. Fails `store`. */
  async removeOrphans(referenced: ReadonlySet<string>): Promise<string[]> {
    const names = this.orphans(referenced);
    for (const name of names) await this.removeName(name);
    return names;
  }

  /** Removes one orphan file by the name `orphans` gave (doctor --repair). */
  async removeFile(name: string): Promise<void> {
    if (name.includes('/') || name.startsWith('..')) throw new AionError('internal', `not an archive file name: ${JSON.stringify(name)}`);
    await this.removeName(name);
  }
}

/** A positioned read on the caller's descriptor (a FileHandle would take ownership of it). */
function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (error, n) => (error ? reject(error) : resolve(n))));
}

/**
 * Makes a directory's entries (a rename, a new or removed file) durable. A filesystem that
 * cannot sync a directory at all (EINVAL, ENOTSUP, EISDIR, EPERM) is taken as it is; any other
 * failure (EIO) is thrown.
 */
async function syncDir(dir: string): Promise<void> {
  // On the thread pool: an fsync can take milliseconds, and runs keep going meanwhile.
  const handle = await open(dir, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw error;
  } finally {
    await handle.close();
  }
}
