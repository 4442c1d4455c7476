// Opening the LevelDB database of a state directory. LevelDB admits one process per
// directory (its LOCK file, released by the kernel when the holder dies, so a crashed holder
// never blocks the next command). While another process holds it we retry until the lock
// timeout, telling the caller once who holds it (from the holder file it leaves beside the db).
import { chmodSync, writeFileSync, rmSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { AionError } from '../errors.js';
import { makeDirs } from '../dirs.js';
import type { BatchOp, KV, RangeOptions } from './kv.js';
import { describeHolder, holderPath, readHolder, type HolderInfo } from './holder.js';
import { liveTickets, Ticket } from './queue.js';

export type { HolderInfo };

export interface OpenOptions {
  lockTimeoutMs: number;
  /**
   * Called once, when the directory turns out to be held by someone else, with this
   * process's place in the line of waiters (1: next).
   */
  onWait?: (holder: HolderInfo | undefined, position: number) => void;
  /** Recorded in the holder file for others to read. */
  command?: string;
  /**
   * Called each time the directory is found held (before `onWait`), with the holder file's
   * contents. It may throw to stop waiting (e.g. the holder is a server to talk to instead).
   */
  whileWaiting?: (holder: HolderInfo | undefined) => Promise<void>;
  /** Close the database after this long unused, and open it again on demand (see LevelKV). */
  idleReleaseMs?: number;
  /** Runs after each re-opening (the engine refreshes what other processes may have changed). */
  onReacquire?: () => Promise<void>;
}

export function dbPath(stateDir: string): string {
  return path.join(stateDir, 'db');
}

export function stateExists(stateDir: string): boolean {
  return existsSync(dbPath(stateDir));
}

/** What lives at a state directory path, looked at without writing anything. */
export type StatePlace =
  | { kind: 'missing' }
  | { kind: 'not_directory' }
  /** A directory with nothing of aion's and nothing else: a fresh state directory. */
  | { kind: 'empty' }
  | { kind: 'aion' }
  /** A directory holding something else (files, a LevelDB of its own): never written to. */
  | { kind: 'foreign'; entries: string[]; leveldb: boolean };

/** What aion itself keeps at the top of a state directory. */
const AION_ENTRIES = new Set(['db', 'holder.json', 'run', 'queue', 'archives']);

export function inspectStatePlace(stateDir: string): StatePlace {
  let st;
  try {
    st = statSync(stateDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw new AionError('store', `cannot read state directory ${stateDir}: ${(error as Error).message}`, { cause: error, details: { state_dir: stateDir } });
  }
  if (!st.isDirectory()) return { kind: 'not_directory' };
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch (error) {
    throw new AionError('store', `cannot read state directory ${stateDir}: ${(error as Error).message}`, { cause: error, details: { state_dir: stateDir } });
  }
  if (entries.includes('db')) return { kind: 'aion' };
  const other = entries.filter((e) => !AION_ENTRIES.has(e) && !e.startsWith('holder.json.'));
  if (other.length === 0) return { kind: 'empty' };
  return { kind: 'foreign', entries: other.sort(), leveldb: other.includes('CURRENT') || other.some((e) => e.startsWith('MANIFEST-')) };
}

/**
 * Refuses a path that cannot be a state directory — a regular file, or a directory holding
 * something else (for a write, only a foreign LevelDB: writing our db beside it would be
 * mistaken for it) — with `store`, before anything is created or opened there.
 */
export function checkStatePlace(stateDir: string, place: StatePlace, write: boolean): void {
  if (place.kind === 'not_directory') {
    throw new AionError('store', `state directory ${stateDir} is not a directory`, {
      details: { state_dir: stateDir },
      hint: 'point --state-dir (or $AION_STATE_DIR) at a directory aion created, or at a path that does not exist yet',
    });
  }
  if (place.kind === 'foreign' && (!write || place.leveldb)) {
    const shown = place.entries.slice(0, 5).join(', ') + (place.entries.length > 5 ? `, … (${place.entries.length} entries)` : '');
    throw new AionError('store', `${stateDir} is not an aion state directory: it holds ${place.leveldb ? 'a LevelDB database of its own' : shown}`, {
      details: { state_dir: stateDir, entries: place.entries.slice(0, 20) },
      hint: 'check --state-dir (or $AION_STATE_DIR); aion never writes into a directory it did not create',
    });
  }
}

function isLocked(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code === 'LEVEL_LOCKED' || /lock .*(held|temporarily unavailable)/i.test(e?.cause?.message ?? '');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** classic-level's implementation method under abstract-level's public `batch()`. */
type RawBatch = { _batch?: (ops: BatchOp[], options: { sync: boolean }) => Promise<void> };

/**
 * Writes `ops` atomically. abstract-level's public `batch()` copies each operation, looks up its
 * encodings, runs hooks and events, then hands the copies to classic-level's `_batch`; ours are
 * already in the binding's own form ({type, key: string, value: Uint8Array}: utf8 keys, view
 * values, no sublevels, hooks or write listeners on this database), so an open database gets
 * them directly: 8 µs less per operation under the baseline JIT (src/jit.cts), about 15 µs per
 * 3-operation batch under V8's default tiers. Anything else goes the public way, which fails
 * as it should (closed: LEVEL_DATABASE_NOT_OPEN). Fails as the write fails; nothing is written.
 */
function writeBatch(db: Level<string, Uint8Array>, ops: BatchOp[], sync: boolean): Promise<void> {
  const raw = (db as unknown as RawBatch)._batch;
  if (db.status === 'open' && typeof raw === 'function' && ops.length > 0) return raw.call(db, ops, { sync });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return db.batch(ops as any, { sync });
}

/**
 * LevelDB behind the KV surface. With `idleReleaseMs`, the database is closed once it has been
 * unused that long (so other processes can take the directory while this one waits on user
 * code) and opened again, waiting for the lock as at first, by the next operation; `epoch`
 * counts the re-openings and `onReacquire` runs after each, before the operation.
 */
class LevelKV implements KV {
  private users = 0;
  private idle: NodeJS.Timeout | undefined;
  private reopening: Promise<Level<string, Uint8Array>> | undefined;
  private closed = false;
  epoch = 0;

  constructor(
    private db: Level<string, Uint8Array> | undefined,
    private readonly stateDir: string,
    private readonly options: OpenOptions,
  ) {}

  private async take(): Promise<Level<string, Uint8Array>> {
    this.users++;
    if (this.idle) {
      clearTimeout(this.idle);
      this.idle = undefined;
    }
    try {
      if (this.db) return this.db;
      if (this.closed) throw new Error('the state directory is closed');
      this.reopening ??= (async () => {
        try {
          const db = await lockAndOpen(this.stateDir, this.options);
          this.db = db;
          this.epoch++;
          await this.options.onReacquire?.();
          return db;
        } finally {
          this.reopening = undefined;
        }
      })();
      return await this.reopening;
    } catch (error) {
      this.done();
      throw error;
    }
  }

  private done(): void {
    this.users--;
    const ms = this.options.idleReleaseMs;
    if (this.users > 0 || ms === undefined || this.closed || !this.db) return;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.users > 0 || !this.db) return;
      const db = this.db;
      this.db = undefined;
      rmSync(holderPath(this.stateDir), { force: true });
      void db.close().catch(() => {});
    }, ms);
    this.idle.unref();
  }

  private async use<T>(fn: (db: Level<string, Uint8Array>) => Promise<T>): Promise<T> {
    const db = await this.take();
    try {
      return await fn(db);
    } finally {
      this.done();
    }
  }

  hold<T>(fn: () => Promise<T>): Promise<T> {
    return this.use(() => fn());
  }
  get(key: string) {
    return this.use((db) => db.get(key));
  }
  getMany(keys: string[]) {
    return this.use((db) => db.getMany(keys));
  }
  batch(ops: BatchOp[], options: { sync: boolean }) {
    return this.use((db) => writeBatch(db, ops, options.sync));
  }
  async *entries(range: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    const db = await this.take();
    try {
      yield* db.iterator(range);
    } finally {
      this.done();
    }
  }
  async *keys(range: RangeOptions): AsyncIterable<string> {
    const db = await this.take();
    try {
      yield* db.keys(range);
    } finally {
      this.done();
    }
  }
  async close() {
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    await this.reopening?.catch(() => undefined);
    const db = this.db;
    this.db = undefined;
    if (db) {
      rmSync(holderPath(this.stateDir), { force: true });
      await db.close();
    }
  }
}

/** Creates the state directory (0700) and its missing parents; any failure is `store` at once. */
function makeDirectory(dir: string): void {
  try {
    makeDirs(dir, 0o700);
  } catch (error) {
    throw new AionError('store', `cannot create state directory ${dir}: ${(error as Error).message}`, { cause: error, details: { state_dir: dir } });
  }
}

/**
 * Opens (creating if needed) the state directory's database.
 * Fails `state_busy` when another process still holds it after `lockTimeoutMs`, and
 * `store` when it cannot be opened for any other reason (permissions, corruption).
 */
export async function openLevel(stateDir: string, options: OpenOptions): Promise<KV & { epoch: number }> {
  makeDirectory(stateDir);
  return new LevelKV(await lockAndOpen(stateDir, options), stateDir, options);
}

/** Opens the database, waiting for its lock up to the timeout; writes the holder file. */
async function lockAndOpen(stateDir: string, options: OpenOptions): Promise<Level<string, Uint8Array>> {
  const deadline = Date.now() + options.lockTimeoutMs;
  let told = false;
  let delay = 25;
  let ticket: Ticket | undefined;
  try {
    for (;;) {
      // Only the first in line tries the lock; a newcomer tries at once only when nobody waits.
      const position = ticket ? ticket.position() : liveTickets(stateDir).length + 1;
      if (position === 1) {
        const db = new Level<string, Uint8Array>(dbPath(stateDir), { keyEncoding: 'utf8', valueEncoding: 'view' });
        try {
          await openPrivately(stateDir, db);
          writeHolder(stateDir, options);
          return db;
        } catch (error) {
          if (!isLocked(error)) {
            throw new AionError('store', `cannot open state directory ${stateDir}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`, { cause: error });
          }
        }
      }
      const holder = readHolder(stateDir);
      await options.whileWaiting?.(holder);
      ticket ??= Ticket.take(stateDir);
      const place = ticket ? ticket.position() : position;
      if (Date.now() >= deadline) {
        throw new AionError('state_busy', `state directory ${stateDir} is held by ${describeHolder(holder)}${place > 1 ? ` (${place - 1} more waiting ahead of this command)` : ''}`, {
          details: { state_dir: stateDir, holder: holder ?? null, queue_position: place },
          hint: 'wait for it to finish, or raise --lock-timeout',
        });
      }
      if (!told) {
        told = true;
        options.onWait?.(holder, place);
      }
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, place === 1 ? 100 : 250);
    }
  } finally {
    ticket?.release();
  }
}

/**
 * Opens the database owner-only, whatever the permissions of the directory around it: `db/`
 * is created (or tightened to) 0700, and the files LevelDB creates while it opens (its log,
 * MANIFEST, CURRENT, LOCK, LOG) are 0600, under a umask of 077 for the length of the open.
 * Tables LevelDB writes later take the process's umask, inside that 0700 directory.
 */
async function openPrivately(stateDir: string, db: Level<string, Uint8Array>): Promise<void> {
  const dir = dbPath(stateDir);
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) {
    mkdirSync(dir, { mode: 0o700 });
  } else if ((st.mode & 0o077) !== 0) {
    try {
      chmodSync(dir, 0o700);
    } catch {
      // not ours to change (a read-only filesystem, another owner): LevelDB decides
    }
  }
  const umask = process.umask(0o077);
  try {
    await db.open();
  } finally {
    process.umask(umask);
  }
}

function writeHolder(stateDir: string, options: OpenOptions): void {
  try {
    const info: HolderInfo = { pid: process.pid, command: options.command ?? 'aion', since: new Date().toISOString() };
    writeFileSync(holderPath(stateDir), JSON.stringify(info) + '\n', { mode: 0o600 });
  } catch {
    // The holder file is advisory: failing to write it only makes waiting messages vaguer.
  }
}
