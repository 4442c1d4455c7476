// In-process engine fixtures: a temp state directory, engines opened on it, and KV wrappers
// that count reads or fail writes on purpose.
//
// Backends: with AION_TEST_BACKEND=postgres (set by test/store/conformance.test.ts, which runs
// these suites again that way) every "state directory" of a test is a PostgreSQL schema of its
// own (named from the directory's path, so reopening it finds the same store), dropped when the
// test file ends: the same tests then check the same invariants on the PostgreSQL backend.
import { after } from 'node:test';
import { createHash } from 'node:crypto';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { openLevel } from '../../src/store/level.js';
import type { BatchOp, KV, RangeOptions } from '../../src/store/kv.js';

export const TEST_BACKEND = process.env.AION_TEST_BACKEND === 'postgres' ? 'postgres' : 'level';
const PG_BASE = process.env.AION_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schemas = new Set<string>();
// Registered at the top level of each test file (this module loads with it): runs once the
// file's tests are done, dropping every schema they used.
if (TEST_BACKEND === 'postgres') after(dropSchemas);

/** The store URL standing for a state directory on the PostgreSQL backend (undefined on LevelDB). */
export function storeFor(stateDir: string): string | undefined {
  if (TEST_BACKEND !== 'postgres') return undefined;
  const schema = `aion_t_${createHash('sha1').update(stateDir).digest('hex').slice(0, 16)}`;
  schemas.add(schema);
  return `${PG_BASE}${PG_BASE.includes('?') ? '&' : '?'}schema=${schema}`;
}

async function dropSchemas(): Promise<void> {
  if (schemas.size === 0) return;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** The KV of a test's store: LevelDB of the directory, or its PostgreSQL schema. */
export async function openTestKV(stateDir: string): Promise<KV> {
  const url = storeFor(stateDir);
  if (!url) return openLevel(stateDir, { lockTimeoutMs: 5_000 });
  const { PgKV } = await import('../../src/store/postgres.js');
  return PgKV.open(url, { create: true });
}

export async function openEngine(stateDir: string, extra: Partial<EngineOptions> = {}): Promise<{ engine: Engine; warnings: string[] }> {
  const warnings: string[] = [];
  const engine = await Engine.open({
    stateDir,
    create: true,
    lockTimeoutMs: 5_000,
    onWarning: (m) => warnings.push(m),
    ...(extra.kv ? {} : { store: storeFor(stateDir) }),
    ...extra,
  });
  return { engine, warnings };
}

/** Wraps a KV: counts entries read by range scans and can fail the next batches. */
export class InstrumentedKV implements KV {
  scanned = 0;
  gets = 0;
  failBatches = 0;
  /** Fails every batch this predicate accepts (e.g. the one that starts a given child). */
  failWhen: ((ops: BatchOp[]) => boolean) | undefined;
  batches: BatchOp[][] = [];

  constructor(private readonly inner: KV) {}
  /** As the wrapped KV's: a shared store keeps its archives as rows. */
  get shared(): boolean | undefined {
    return this.inner.shared;
  }

  static async open(stateDir: string): Promise<InstrumentedKV> {
    return new InstrumentedKV(await openTestKV(stateDir));
  }

  get(key: string) {
    this.gets++;
    return this.inner.get(key);
  }
  getMany(keys: string[]) {
    this.gets += keys.length;
    return this.inner.getMany(keys);
  }
  async batch(ops: BatchOp[], options: { sync: boolean }) {
    if (this.failWhen?.(ops)) throw new Error('injected write failure (predicate)');
    if (this.failBatches > 0) {
      this.failBatches--;
      throw new Error('injected write failure (disk full)');
    }
    this.batches.push(ops);
    return this.inner.batch(ops, options);
  }
  async *entries(range: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    for await (const entry of this.inner.entries(range)) {
      this.scanned++;
      yield entry;
    }
  }
  async *keys(range: RangeOptions): AsyncIterable<string> {
    for await (const k of this.inner.keys(range)) {
      this.scanned++;
      yield k;
    }
  }
  close() {
    return this.inner.close();
  }
  get epoch() {
    return this.inner.epoch;
  }
  hold<T>(fn: () => Promise<T>, options?: { exclusive?: boolean }): Promise<T> {
    return this.inner.hold ? this.inner.hold(fn, options) : fn();
  }
}
