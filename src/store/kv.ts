// The minimal key-value surface the store needs. LevelDB provides it in production; tests
// provide wrappers that fail on purpose to prove failure atomicity.

export type BatchOp =
  | { type: 'put'; key: string; value: Uint8Array }
  | { type: 'del'; key: string };

export interface RangeOptions {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  limit?: number;
  reverse?: boolean;
}

export interface KV {
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: string[]): Promise<(Uint8Array | undefined)[]>;
  /** Applies every op or none. `sync` forces the write to disk before resolving. */
  batch(ops: BatchOp[], options: { sync: boolean }): Promise<void>;
  entries(range: RangeOptions): AsyncIterable<[string, Uint8Array]>;
  keys(range: RangeOptions): AsyncIterable<string>;
  close(): Promise<void>;
  /**
   * Counts the times the KV was let go of and taken again (a releasable state directory):
   * while it stays the same, no other process can have written. Absent = never released.
   */
  readonly epoch?: number;
  /** A store shared by processes on many hosts (PostgreSQL): no directory beside it holds files. */
  readonly shared?: boolean;
  /**
   * Keeps the KV taken for the whole of `fn` (a transaction: reads, then writes). `exclusive`:
   * a deploy operation, serialized against every other transaction of every process sharing
   * the store (LevelDB: one process holds the directory, so this changes nothing there).
   */
  hold?<T>(fn: () => Promise<T>, options?: { exclusive?: boolean }): Promise<T>;
}

/** An empty, read-only KV: a state directory that does not exist yet. Writes are bugs. */
export class EmptyKV implements KV {
  async get(): Promise<undefined> {
    return undefined;
  }
  async getMany(keys: string[]): Promise<undefined[]> {
    return keys.map(() => undefined);
  }
  async batch(): Promise<void> {
    throw new Error('internal: write to a state directory opened read-only');
  }
  async *entries(): AsyncIterable<[string, Uint8Array]> {}
  async *keys(): AsyncIterable<string> {}
  async close(): Promise<void> {}
}
