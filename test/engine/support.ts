// In-process engine fixtures: a temp state directory, engines opened on it, and KV wrappers
// that count reads or fail writes on purpose.
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { openLevel } from '../../src/store/level.js';
import type { BatchOp, KV, RangeOptions } from '../../src/store/kv.js';

export async function openEngine(stateDir: string, extra: Partial<EngineOptions> = {}): Promise<{ engine: Engine; warnings: string[] }> {
  const warnings: string[] = [];
  const engine = await Engine.open({
    stateDir,
    create: true,
    lockTimeoutMs: 5_000,
    onWarning: (m) => warnings.push(m),
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

  static async open(stateDir: string): Promise<InstrumentedKV> {
    return new InstrumentedKV(await openLevel(stateDir, { lockTimeoutMs: 5_000 }));
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
}
