// The PostgreSQL backend behind the KV surface (`--store postgres://…`). Imported only when such
// a URL is given: LevelDB stays the default and never pays for it.
//
// Layout (in the URL's `?schema=` schema, default `public`; created and migrated by aion, see
// postgres-schema.ts): `aion_kv(key bytea, value bytea)` holds the same keyspace as LevelDB —
// keys are the UTF-8 bytes of the LevelDB keys, and bytea compares as memcmp, which is exactly
// LevelDB's byte order, so every range scan returns the same keys in the same order.
//
// Transactions: `hold(fn)` runs `fn` in one transaction on one connection (reads and writes
// inside it — found through AsyncLocalStorage — join it; nested holds join the outer one).
// Every transaction takes the fleet's deploy lock (an advisory transaction lock of this schema):
// shared for run work, exclusive for deploy operations (`{ exclusive: true }`), so deploy
// operations are serialized fleet-wide and a start's route read + run/pin write cannot
// interleave with a deploy. A deploy transaction that writes bumps the catalog counter and
// NOTIFYs `aion_catalog`; any transaction that finds the counter moved since this process last
// looked calls `onCatalogChange` first (inside the transaction, so the catalog it reloads is
// the committed one), which is how every process's next start sees a route flip.
//
// `epoch` moves at every look: other processes may write at any moment, so whatever the engine
// caches is re-read (the run writer re-checks the run record inside its transaction).
//
// Failure behaviour: any SQL error rejects the operation; a failed transaction is rolled back
// whole (nothing of it is visible). A failed COMMIT of a deploy reloads the catalog through
// `onCatalogChange` so memory never stays ahead of the database.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import os from 'node:os';
import type pg from 'pg';
import { AionError } from '../errors.js';
import type { BatchOp, KV, RangeOptions } from './kv.js';
import { K } from './keys.js';
import { ensureSchema, redactUrl, parseStoreUrl, type PgTarget } from './postgres-schema.js';

export { redactUrl, parseStoreUrl };

interface Tx {
  client: pg.PoolClient;
  /** Ended: work that outlives its transaction (timers started inside it) uses the pool. */
  done: boolean;
  exclusive: boolean;
  wroteDeploy: boolean;
}

export interface PgOpenOptions {
  /** Reloads what this process caches of the catalog (called inside a transaction). */
  onCatalogChange?: () => Promise<void>;
  /** Write commands create the schema; read-only ones see an empty store when it is missing. */
  create: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PAGE = 512;
/** The run records' keys (K.run): read under the workflow's lock inside transactions. */
const RUN_PREFIX = K.run('');

function keyBytes(k: string): Buffer {
  return Buffer.from(encoder.encode(k));
}

function asView(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Advisory lock ids of this schema: `(hashtext(schema:what), n)`. */
export class PgKV implements KV {
  readonly shared = true;
  private readonly als = new AsyncLocalStorage<Tx>();
  private looks = 0;
  /** The catalog counter this process's catalog reflects. */
  private catalogSeen: string | undefined;
  private listener: pg.Client | undefined;
  private closed = false;
  onCatalogChange: (() => Promise<void>) | undefined;
  /** Checks a batch inside its transaction before it is written (the run leases: engine/lease.ts). */
  fence: ((ops: BatchOp[]) => Promise<void>) | undefined;

  private constructor(
    readonly pool: pg.Pool,
    readonly target: PgTarget,
    private readonly pgModule: typeof pg,
  ) {}

  static async open(url: string, options: PgOpenOptions): Promise<PgKV> {
    const target = parseStoreUrl(url);
    // Required here, on the PostgreSQL path only (the start-up bundle keeps pg outside itself).
    const pgModule = createRequire(import.meta.url)('pg') as typeof pg;
    const pool = new pgModule.Pool({ connectionString: target.connectionString, max: 8, connectionTimeoutMillis: 10_000, application_name: `aion ${process.pid}` });
    // A connection that dies while idle in the pool must not crash the process.
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      client.on('error', () => {});
      void client.query(`SET search_path TO ${quoteIdent(target.schema)}`).catch(() => {});
    });
    const kv = new PgKV(pool, target, pgModule);
    kv.onCatalogChange = options.onCatalogChange;
    try {
      await ensureSchema(pool, target, options.create);
      kv.catalogSeen = await kv.catalogCounter(pool);
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return kv;
  }

  /** The schema name, quoted for SQL. */
  get schemaSql(): string {
    return quoteIdent(this.target.schema);
  }

  get epoch(): number {
    return ++this.looks;
  }

  /** The connection of the current transaction, if any. */
  private tx(): Tx | undefined {
    const tx = this.als.getStore();
    return tx && !tx.done ? tx : undefined;
  }

  /** Runs one query on the current transaction's connection, or on any pooled one. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const tx = this.tx();
    return (tx ? tx.client : this.pool).query<R>(text, values);
  }

  /** True while inside `hold`. */
  get inTransaction(): boolean {
    return this.tx() !== undefined;
  }

  private lockKey(what: string): string {
    return `${this.target.schema}:${what}`;
  }

  async hold<T>(fn: () => Promise<T>, options: { exclusive?: boolean } = {}): Promise<T> {
    const outer = this.tx();
    if (outer) {
      if (options.exclusive && !outer.exclusive) {
        // Upgrading inside a transaction (an audit append inside run work): take the lock now.
        await outer.client.query('SELECT pg_advisory_xact_lock(hashtext($1), 0)', [this.lockKey('deploy')]);
        outer.exclusive = true;
        await this.refreshIfMoved(outer.client);
      }
      return fn();
    }
    if (this.closed) throw new Error('the PostgreSQL store is closed');
    const client = await this.pool.connect();
    const tx: Tx = { client, done: false, exclusive: options.exclusive === true, wroteDeploy: false };
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query(tx.exclusive ? 'SELECT pg_advisory_xact_lock(hashtext($1), 0)' : 'SELECT pg_advisory_xact_lock_shared(hashtext($1), 0)', [this.lockKey('deploy')]);
      const result = await this.als.run(tx, async () => {
        await this.refreshIfMoved(client);
        return fn();
      });
      if (tx.wroteDeploy) {
        const { rows } = await client.query<{ catalog: string }>('UPDATE aion_fleet SET catalog = catalog + 1 WHERE id = 1 RETURNING catalog::text AS catalog');
        await client.query(`SELECT pg_notify('aion_catalog', $1)`, [this.target.schema]);
        try {
          await client.query('COMMIT');
        } catch (error) {
          broken = true;
          await this.reloadCatalog();
          throw error;
        }
        this.catalogSeen = rows[0]?.catalog;
      } else {
        await client.query('COMMIT');
      }
      return result;
    } catch (error) {
      if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
      // A deploy rolled back after the engine swapped its catalog: read it back.
      if (tx.wroteDeploy) await this.reloadCatalog();
      throw error;
    } finally {
      tx.done = true;
      client.release(broken ? true : undefined);
    }
  }

  /** Reloads the catalog from committed state (after a failed deploy transaction). */
  private async reloadCatalog(): Promise<void> {
    try {
      await this.hold(async () => {
        this.catalogSeen = undefined;
        await this.refreshIfMoved(this.tx()!.client);
      });
    } catch {
      // Unreachable database: the next transaction finds the counter moved and reloads.
      this.catalogSeen = undefined;
    }
  }

  private async catalogCounter(q: pg.Pool | pg.PoolClient): Promise<string | undefined> {
    const { rows } = await q.query<{ catalog: string }>('SELECT catalog::text AS catalog FROM aion_fleet WHERE id = 1');
    return rows[0]?.catalog;
  }

  private async refreshIfMoved(client: pg.PoolClient): Promise<void> {
    const now = await this.catalogCounter(client);
    if (now === this.catalogSeen) return;
    await this.onCatalogChange?.();
    this.catalogSeen = now;
  }

  /**
   * Outside a transaction: reloads the catalog when another process changed it (the LISTEN
   * handler and the poll fallback call this).
   */
  async refreshCatalog(): Promise<void> {
    const now = await this.catalogCounter(this.pool);
    if (now === this.catalogSeen) return;
    await this.hold(async () => undefined);
  }

  /**
   * Listens on one connection of its own: `aion_catalog` (another process deployed: the
   * catalog is reloaded) and the given channels. A lost connection is reported through
   * `onError` (callers poll meanwhile and may listen again).
   */
  async listen(channels: Record<string, (payload: string) => void>, onError: (error: Error) => void): Promise<void> {
    if (this.listener) return;
    const client = new this.pgModule.Client({ connectionString: this.target.connectionString, application_name: `aion ${process.pid} listen` });
    client.on('error', (error) => {
      if (this.listener === client) this.listener = undefined;
      onError(error);
    });
    client.on('notification', (msg) => {
      if (msg.channel === 'aion_catalog') {
        if (msg.payload === this.target.schema) void this.refreshCatalog().catch(() => {});
        return;
      }
      channels[msg.channel]?.(msg.payload ?? '');
    });
    await client.connect();
    await client.query('LISTEN aion_catalog');
    for (const channel of Object.keys(channels)) await client.query(`LISTEN ${quoteIdent(channel)}`);
    this.listener = client;
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  /**
   * Inside a transaction: takes the fleet-wide lock of one workflow id until it ends. Every
   * read of a run record inside a transaction takes it first, so a read-check-write of a run
   * (start, append) never interleaves with another process's.
   */
  async lockWorkflow(workflowId: string): Promise<void> {
    if (!this.tx()) throw new Error('internal: lockWorkflow outside a transaction');
    await this.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [this.lockKey('wf'), workflowId]);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    if (key.startsWith(RUN_PREFIX) && this.tx()) await this.lockWorkflow(key.slice(RUN_PREFIX.length));
    const { rows } = await this.query<{ value: Buffer }>('SELECT value FROM aion_kv WHERE key = $1', [keyBytes(key)]);
    return rows[0] ? asView(rows[0].value) : undefined;
  }

  async getMany(keys: string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.query<{ key: Buffer; value: Buffer }>('SELECT key, value FROM aion_kv WHERE key = ANY($1::bytea[])', [keys.map(keyBytes)]);
    const found = new Map(rows.map((r) => [decoder.decode(r.key), asView(r.value)]));
    return keys.map((k) => found.get(k));
  }

  async batch(ops: BatchOp[], _options: { sync: boolean }): Promise<void> {
    if (ops.length === 0) return;
    const tx = this.tx();
    if (!tx) return this.hold(() => this.batch(ops, _options));
    if (tx.exclusive) tx.wroteDeploy = true;
    await this.fence?.(ops);
    // Within one batch the last op on a key wins, as in LevelDB.
    const last = new Map<string, BatchOp>();
    for (const op of ops) last.set(op.key, op);
    const puts = [...last.values()].filter((op): op is Extract<BatchOp, { type: 'put' }> => op.type === 'put');
    const dels = [...last.values()].filter((op) => op.type === 'del');
    const run = async (q: (text: string, values: unknown[]) => Promise<unknown>) => {
      if (dels.length > 0) await q('DELETE FROM aion_kv WHERE key = ANY($1::bytea[])', [dels.map((op) => keyBytes(op.key))]);
      if (puts.length > 0) {
        await q('INSERT INTO aion_kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [
          puts.map((op) => keyBytes(op.key)),
          puts.map((op) => Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength)),
        ]);
      }
    };
    await run((text, values) => this.query(text, values));
  }

  async *entries(range: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    for await (const row of this.scan(range, true)) yield [decoder.decode(row.key), asView(row.value!)];
  }

  async *keys(range: RangeOptions): AsyncIterable<string> {
    for await (const row of this.scan(range, false)) yield decoder.decode(row.key);
  }

  /** Keyset-paged range scan in key order (or reverse), at most `limit` rows. */
  private async *scan(range: RangeOptions, values: boolean): AsyncIterable<{ key: Buffer; value?: Buffer }> {
    let remaining = range.limit !== undefined && range.limit >= 0 ? range.limit : Infinity;
    const reverse = range.reverse === true;
    let lower: { key: Buffer; inclusive: boolean } | undefined =
      range.gt !== undefined ? { key: keyBytes(range.gt), inclusive: false } : range.gte !== undefined ? { key: keyBytes(range.gte), inclusive: true } : undefined;
    let upper: { key: Buffer; inclusive: boolean } | undefined =
      range.lt !== undefined ? { key: keyBytes(range.lt), inclusive: false } : range.lte !== undefined ? { key: keyBytes(range.lte), inclusive: true } : undefined;
    while (remaining > 0) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (lower) {
        params.push(lower.key);
        where.push(`key ${lower.inclusive ? '>=' : '>'} $${params.length}`);
      }
      if (upper) {
        params.push(upper.key);
        where.push(`key ${upper.inclusive ? '<=' : '<'} $${params.length}`);
      }
      const n = Math.min(PAGE, remaining);
      const sql = `SELECT key${values ? ', value' : ''} FROM aion_kv${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY key ${reverse ? 'DESC' : 'ASC'} LIMIT ${n}`;
      const { rows } = await this.query<{ key: Buffer; value?: Buffer }>(sql, params);
      for (const row of rows) yield row;
      remaining -= rows.length;
      if (rows.length < n) return;
      const lastKey = rows[rows.length - 1]!.key;
      if (reverse) upper = { key: lastKey, inclusive: false };
      else lower = { key: lastKey, inclusive: false };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }

  /** Who this process is, for the workers table. */
  static host(): string {
    return os.hostname();
  }
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Wraps a PostgreSQL failure as `store`, naming the database (password never shown). */
export function pgStoreError(target: PgTarget, what: string, error: unknown): AionError {
  return new AionError('store', `${what} ${redactUrl(target.display)}: ${(error as Error).message}`, { cause: error, details: { store: redactUrl(target.display) } });
}
