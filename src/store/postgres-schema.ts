// The PostgreSQL schema of aion, created and migrated by aion itself. `aion_schema` holds the
// schema version; each migration runs in one transaction under an advisory lock of the
// schema, so two processes opening a new database at once create it once. A database whose
// schema is newer than this aion knows is refused (`store`, exit 10) and never written.
import type pg from 'pg';
import { AionError } from '../errors.js';

/** The schema version this aion writes. */
export const PG_SCHEMA_VERSION = 1;

export interface PgTarget {
  /** What `pg` connects with (the URL without aion's own parameters). */
  connectionString: string;
  /** The PostgreSQL schema holding aion's tables (`?schema=`, default `public`). */
  schema: string;
  /** The URL as given, for messages (see redactUrl). */
  display: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Parses `postgres://user@host:port/db[?schema=name]`; anything else is `usage`. */
export function parseStoreUrl(url: string): PgTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AionError('usage', `--store must be a postgres:// URL, got '${redactUrl(url)}'`, { hint: 'e.g. --store postgres://postgres@127.0.0.1:5432/aion (or set $AION_STORE)' });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new AionError('usage', `--store must be a postgres:// URL, got '${redactUrl(url)}'`, { hint: 'e.g. --store postgres://postgres@127.0.0.1:5432/aion (or set $AION_STORE)' });
  }
  const schema = parsed.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_NAME.test(schema)) {
    throw new AionError('usage', `the schema in --store must be a lower-case identifier (letters, digits, _), got '${schema}'`);
  }
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), schema, display: url };
}

/** The URL with any password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

interface Migration {
  to: number;
  sql: string[];
}

/** Each step from version `to - 1`. Tables are per schema; the lock ids are named by the schema. */
const MIGRATIONS: Migration[] = [
  {
    to: 1,
    sql: [
      // Keys are the UTF-8 bytes of the LevelDB keys: bytea sorts as memcmp, LevelDB's order.
      'CREATE TABLE aion_kv (key bytea PRIMARY KEY, value bytea NOT NULL)',
      // The catalog counter: bumped by every deploy transaction that writes.
      'CREATE TABLE aion_fleet (id int PRIMARY KEY CHECK (id = 1), catalog bigint NOT NULL)',
      'INSERT INTO aion_fleet (id, catalog) VALUES (1, 0)',
      // Each process driving runs (aion serve, or a one-shot command while it drives its runs).
      `CREATE TABLE aion_workers (id text PRIMARY KEY, host text NOT NULL, pid int NOT NULL, kind text NOT NULL,
         started_at timestamptz NOT NULL DEFAULT now(), last_seen timestamptz NOT NULL DEFAULT now())`,
      // Which worker drives which active workflow, until when.
      'CREATE TABLE aion_leases (workflow_id text PRIMARY KEY, worker_id text NOT NULL, expires_at timestamptz NOT NULL)',
      'CREATE INDEX aion_leases_worker ON aion_leases (worker_id)',
    ],
  },
];

function quote(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/**
 * Creates or migrates the schema (with `create`; without, a missing schema is created too:
 * an empty aion schema reads as an empty store). Fails `store` when the server cannot be
 * reached, the schema is newer than this aion, or a migration fails (rolled back whole).
 */
export async function ensureSchema(pool: pg.Pool, target: PgTarget, _create: boolean): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new AionError('store', `cannot connect to PostgreSQL at ${redactUrl(target.display)}: ${(error as Error).message || (error as { code?: string }).code || String(error)}`, {
      cause: error,
      details: { store: redactUrl(target.display) },
      hint: 'check that the server runs and the URL (user, host, port, database) is right',
    });
  }
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), 1)', [`${target.schema}:migrate`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quote(target.schema)}`);
    await client.query(`SET LOCAL search_path TO ${quote(target.schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS aion_schema (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM aion_schema WHERE id = 1');
    const current = rows[0]?.version ?? 0;
    if (current > PG_SCHEMA_VERSION) {
      throw new AionError('store', `the PostgreSQL schema '${target.schema}' is at version ${current}, newer than this aion supports (${PG_SCHEMA_VERSION}); nothing was written`, {
        details: { store: redactUrl(target.display), schema_version: current, supported: PG_SCHEMA_VERSION },
        hint: 'upgrade aion on this host',
      });
    }
    for (const m of MIGRATIONS) {
      if (m.to <= current) continue;
      for (const sql of m.sql) await client.query(sql);
    }
    if (current < PG_SCHEMA_VERSION) {
      await client.query('INSERT INTO aion_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version', [PG_SCHEMA_VERSION]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (error instanceof AionError) throw error;
    throw new AionError('store', `cannot prepare the aion schema in ${redactUrl(target.display)}: ${(error as Error).message}`, { cause: error, details: { store: redactUrl(target.display) } });
  } finally {
    client.release();
  }
}
