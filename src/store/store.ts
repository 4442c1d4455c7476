// The state directory: typed reads and atomic batch writes over the KV. The store knows the
// keyspace and encodings, nothing of the engine's rules. Every read or write failure surfaces
// as AionError('store') naming what could not be read or written.
import { statfs } from 'node:fs/promises';
import { AionError } from '../errors.js';
import { EmptyKV, type BatchOp, type KV, type RangeOptions } from './kv.js';
import { FORMAT_KEY, K, STATE_FORMAT_VERSION } from './keys.js';
import { checkStatePlace, inspectStatePlace, openLevel, type OpenOptions } from './level.js';
import { ArchiveFiles } from './archives.js';

/** Written synchronously by Store.flush, so that earlier unsynced writes reach the disk. */
const FLUSH_KEY = 'meta\x00flush';

const decoder = new TextDecoder();

/** A value's JSON as UTF-8 bytes (a Buffer: for small values 2.5-4 times cheaper than TextEncoder). */
export function encodeJSON(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function putJSON(key: string, value: unknown): BatchOp {
  return { type: 'put', key, value: encodeJSON(value) };
}

export function putBytes(key: string, value: Uint8Array): BatchOp {
  return { type: 'put', key, value };
}

export function del(key: string): BatchOp {
  return { type: 'del', key };
}

/**
 * A deploy audit record to append: Store.write gives it the directory's next sequence number
 * (K.audit) in the same batch, so the history's order is the order of the writes, whatever
 * the clock says.
 */
export interface AuditAppend {
  type: 'audit';
  value: Uint8Array;
}

export type StoreOp = BatchOp | AuditAppend;

export function appendAudit(record: unknown): AuditAppend {
  return { type: 'audit', value: encodeJSON(record) };
}

/**
 * Room a load needs beyond its archive file: its package row, deploy record and route in
 * LevelDB's log (then once more in a table when the log is compacted), a new MANIFEST.
 */
const ROOM_MARGIN_BYTES = 1 << 20;

/** The state formats this build reads: 1 (archives inside LevelDB) and 2 (archive files). */
const READABLE_FORMATS = new Set([1, STATE_FORMAT_VERSION]);

export class Store {
  /** The archive files beside the database (`<state>/archives`); none on a URL store (PostgreSQL). */
  readonly archives: ArchiveFiles | undefined;
  /** The directory's format record (1 until the first archive file is referenced). */
  private format = STATE_FORMAT_VERSION;

  private constructor(
    private readonly kv: KV,
    /** False for a state directory that does not exist yet (reads see nothing). */
    readonly exists: boolean,
    /** The directory's path; undefined for a URL store. */
    readonly stateDir: string | undefined,
  ) {
    this.archives = stateDir === undefined ? undefined : new ArchiveFiles(stateDir);
  }

  /**
   * Refuses (`store`, before anything is written) a load of an archive of `bytes` that the
   * state directory's filesystem has no room for: the archive file, plus 1 MiB for what the
   * database writes with it. The archive itself never enters LevelDB, so a load that fails for
   * want of space leaves nothing for a later open to replay.
   */
  async checkRoom(bytes: number): Promise<void> {
    if (this.stateDir === undefined) return; // a database server's disk is its own business
    let free: number;
    try {
      const st = await statfs(this.stateDir);
      free = Number(st.bavail) * Number(st.bsize);
    } catch {
      return; // no figure to judge by: the write itself reports a lack of space
    }
    const needed = bytes + ROOM_MARGIN_BYTES;
    if (free < needed) {
      const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;
      throw new AionError('store', `not enough free space for this load in ${this.stateDir}: it needs about ${mib(needed)} (the archive, plus 1 MiB for the database), and ${mib(free)} is free; nothing was written`, {
        details: { state_dir: this.stateDir, needed_bytes: needed, free_bytes: free },
        hint: 'free space on that filesystem (or move the state directory), then retry',
      });
    }
  }

  /**
   * The ops a batch that references its first archive file adds: the format record, raised
   * to 2 (an older aion, which would find no archive in LevelDB, refuses the directory).
   */
  formatOps(): BatchOp[] {
    return this.format === STATE_FORMAT_VERSION ? [] : [putJSON(FORMAT_KEY, { format_version: STATE_FORMAT_VERSION })];
  }

  /** The versions some package row names, by its key (a corrupt row's too): what keeps an archive file. */
  async referencedVersions(): Promise<Set<string>> {
    const versions = new Set<string>();
    for await (const k of this.keys(K.packageMetaRange())) versions.add(k.slice(k.lastIndexOf('\x00') + 1));
    return versions;
  }

  /**
   * Opens the state directory. With `create: false` nothing is created: a missing directory
   * fails `not_found` (with `error.state_dir`; with `missingOk` it reads as empty, as `aion
   * doctor` wants), an empty one reads as empty and refuses writes. A path that is not a directory, or a directory holding something other than an
   * aion state directory, fails `store` and is never written to (see checkStatePlace).
   * Checks the format record of an existing one.
   */
  static async open(stateDir: string, options: OpenOptions & { create: boolean; missingOk?: boolean }): Promise<Store> {
    const place = inspectStatePlace(stateDir);
    checkStatePlace(stateDir, place, options.create);
    if (!options.create && place.kind === 'missing' && !options.missingOk) {
      throw new AionError('not_found', `state directory ${stateDir} does not exist`, {
        details: { state_dir: stateDir },
        hint: 'check --state-dir (or $AION_STATE_DIR); a state directory is created by the first aion load',
      });
    }
    if (!options.create && place.kind !== 'aion') return new Store(new EmptyKV(), false, stateDir);
    const kv = await openLevel(stateDir, options);
    const store = new Store(kv, true, stateDir);
    try {
      await store.checkFormat(options.create);
    } catch (error) {
      await kv.close().catch(() => {});
      throw error;
    }
    return store;
  }

  /**
   * Opens a store named by a URL (`postgres://…`): the PostgreSQL backend, imported only here.
   * Fails `usage` for a URL that is not postgres://, `store` when the server cannot be reached
   * or its schema is newer than this aion.
   */
  static async openUrl(url: string, options: { create: boolean; onCatalogChange?: () => Promise<void> }): Promise<Store> {
    const { PgKV } = await import('./postgres.js');
    const kv = await PgKV.open(url, options);
    // No directory: archives are rows of the shared store, like everything else.
    const store = new Store(kv, true, undefined);
    try {
      await store.checkFormat(true);
    } catch (error) {
      await kv.close().catch(() => {});
      throw error;
    }
    return store;
  }

  /** The KV underneath (the fleet side reaches the PostgreSQL backend through it). */
  get backend(): KV {
    return this.kv;
  }

  /** A store over any KV (tests use this to inject faults); archive files go under `stateDir`. */
  static async over(kv: KV, stateDir: string): Promise<Store> {
    const store = new Store(kv, true, kv.shared ? undefined : stateDir);
    await store.checkFormat(true);
    return store;
  }

  /**
   * Checks the format record; a database without one is new (written only when `create`)
   * unless it holds keys already — then it is someone else's LevelDB: `store`, untouched.
   */
  private async checkFormat(create: boolean): Promise<void> {
    let format: { format_version: number } | undefined;
    try {
      format = await this.getJSON<{ format_version: number }>(FORMAT_KEY);
    } catch (error) {
      throw new AionError('store', `the state directory's database is not aion's: ${(error as Error).message}`, { cause: error });
    }
    if (format === undefined) {
      for await (const k of this.keys({})) {
        throw new AionError('store', `the database in the state directory is not aion's: it holds keys (${printableKey(k).slice(0, 40)}, …) but no aion format record`, {
          hint: 'check --state-dir (or $AION_STATE_DIR); aion never writes into a database it did not create',
        });
      }
      if (create) await this.write([putJSON(FORMAT_KEY, { format_version: STATE_FORMAT_VERSION })], { sync: true });
    } else if (!READABLE_FORMATS.has(format.format_version)) {
      throw new AionError(
        'store',
        `state directory format ${format.format_version} is not supported by this aion (supports ${[...READABLE_FORMATS].join(' and ')})`,
      );
    } else {
      this.format = format.format_version;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.kv.get(key);
    } catch (error) {
      throw storeError('read', key, error);
    }
  }

  /** Reads and parses a JSON value; a value that does not parse is a `store` error. */
  async getJSON<T>(key: string): Promise<T | undefined> {
    const bytes = await this.get(key);
    return bytes === undefined ? undefined : parseJSON<T>(key, bytes);
  }

  async getManyJSON<T>(keys: string[]): Promise<(T | undefined)[]> {
    let values: (Uint8Array | undefined)[];
    try {
      values = await this.kv.getMany(keys);
    } catch (error) {
      throw storeError('read', keys[0] ?? '', error);
    }
    return values.map((bytes, i) => (bytes === undefined ? undefined : parseJSON<T>(keys[i]!, bytes)));
  }

  /** Raw entries of a range, in key order. */
  async *entries(range: RangeOptions): AsyncGenerator<[string, Uint8Array]> {
    try {
      for await (const entry of this.kv.entries(range)) yield entry;
    } catch (error) {
      throw storeError('scan', range.gt ?? range.gte ?? '', error);
    }
  }

  async *keys(range: RangeOptions): AsyncGenerator<string> {
    try {
      for await (const k of this.kv.keys(range)) yield k;
    } catch (error) {
      throw storeError('scan', range.gt ?? range.gte ?? '', error);
    }
  }

  /** Entries of a range parsed as JSON; an unparsable one is handed to `onCorrupt` and skipped. */
  async *scanJSON<T>(range: RangeOptions, onCorrupt?: (key: string, error: AionError) => void): AsyncGenerator<[string, T]> {
    for await (const [k, bytes] of this.entries(range)) {
      try {
        yield [k, parseJSON<T>(k, bytes)];
      } catch (error) {
        if (!onCorrupt) throw error;
        onCorrupt(k, error as AionError);
      }
    }
  }

  /**
   * Applies all ops atomically; audit appends get the next sequence numbers, read and written
   * with the directory held throughout. Fails `store` (and nothing was written) on any error;
   * the sequence numbers of a failed write are skipped, never reused.
   */
  async write(ops: StoreOp[], options: { sync: boolean }): Promise<void> {
    if (!this.exists) throw new AionError('internal', 'write to a state directory that was opened read-only');
    if (!ops.some((op) => op.type === 'audit')) return this.writeBatch(ops as BatchOp[], options);
    // Exclusive: audit sequence numbers are read then written by one writer at a time.
    return this.hold(async () => {
      const seq = await this.nextAuditSeq(ops.filter((op) => op.type === 'audit').length);
      let n = seq;
      await this.writeBatch(ops.map((op) => (op.type === 'audit' ? { type: 'put', key: K.audit(n++), value: op.value } : op)), options);
    }, { exclusive: true });
  }

  private async writeBatch(ops: BatchOp[], options: { sync: boolean }): Promise<void> {
    try {
      await this.kv.batch(ops, options);
      // Pending once it has landed: only a synchronous write issued after that covers it.
      if (!options.sync) this.dirty = true;
    } catch (error) {
      throw new AionError('store', `could not write the state directory: ${(error as Error).message}`, { cause: error });
    }
    if (ops.some((op) => op.type === 'put' && op.key === FORMAT_KEY)) this.format = STATE_FORMAT_VERSION;
  }

  /** The next audit sequence number, valid while no other process can have written (epoch). */
  private auditNext: { epoch: number; seq: number } | undefined;

  /** Reserves `count` audit sequence numbers; returns the first. */
  private async nextAuditSeq(count: number): Promise<number> {
    if (this.auditNext?.epoch !== this.epoch) {
      let last = 0;
      for await (const k of this.keys({ ...K.auditRange(), reverse: true, limit: 1 })) last = K.auditSeq(k);
      // Re-checked after the read: a concurrent caller of this process may have set it meanwhile.
      if (this.auditNext?.epoch !== this.epoch) this.auditNext = { epoch: this.epoch, seq: last + 1 };
    }
    const first = this.auditNext!.seq;
    this.auditNext!.seq += count;
    return first;
  }

  async close(): Promise<void> {
    await this.kv.close();
  }

  /** See KV.epoch: unchanged means no other process can have written since. */
  get epoch(): number {
    return this.kv.epoch ?? 0;
  }

  /**
   * Runs `fn` with the state directory held throughout (a read-then-write transaction);
   * `exclusive` for deploy operations (see KV.hold).
   */
  hold<T>(fn: () => Promise<T>, options?: { exclusive?: boolean }): Promise<T> {
    return this.kv.hold ? this.kv.hold(fn, options) : fn();
  }

  /** An unsynchronized write has landed since the last flush was issued. */
  private dirty = false;
  /** The flush issued last, while it is in flight. */
  private flushing: Promise<void> | undefined;

  /**
   * Makes every write that has landed durable: one synchronous write, shared by the callers that
   * come while it is in flight and have nothing newer (a flush issued after their writes landed
   * covers them, so they wait for that one; returning before it lands would report a write that
   * a power loss can still take). Nothing when nothing is pending. Fails `store` like `write`,
   * and then the writes stay pending for the next flush.
   */
  flush(): Promise<void> {
    if (!this.dirty) return this.flushing ?? Promise.resolve();
    this.dirty = false;
    const flushing = this.write([putJSON(FLUSH_KEY, { at: Date.now() })], { sync: true }).then(
      () => {
        if (this.flushing === flushing) this.flushing = undefined;
      },
      (error: unknown) => {
        this.dirty = true;
        if (this.flushing === flushing) this.flushing = undefined;
        throw error;
      },
    );
    this.flushing = flushing;
    return flushing;
  }

  /** The ramps: workflow type → {version, percent}; an unparsable one goes to `onCorrupt`. */
  async ramps(onCorrupt?: (key: string, error: AionError) => void): Promise<Map<string, { version: string; percent: number }>> {
    const ramps = new Map<string, { version: string; percent: number }>();
    for await (const [k, ramp] of this.scanJSON<{ version: string; percent: number }>(K.rampRange(), onCorrupt)) {
      ramps.set(k.slice(k.indexOf('\x00') + 1), ramp);
    }
    return ramps;
  }

  /** The route pointers: workflow type → version. */
  async routes(): Promise<Map<string, string>> {
    const routes = new Map<string, string>();
    for await (const [k, bytes] of this.entries(K.routeRange())) {
      routes.set(k.slice(k.indexOf('\x00') + 1), decoder.decode(bytes));
    }
    return routes;
  }
}

function parseJSON<T>(key: string, bytes: Uint8Array): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch (error) {
    throw new AionError('store', `corrupt record ${printableKey(key)}: not valid JSON`, { cause: error });
  }
}

export function printableKey(k: string): string {
  return k.split('\x00').join('/');
}

function storeError(what: string, k: string, error: unknown): AionError {
  return new AionError('store', `could not ${what} ${printableKey(k)} in the state directory: ${(error as Error).message}`, { cause: error });
}

export { K };
