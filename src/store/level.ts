// Opening the LevelDB database of a state directory. LevelDB admits one process per
// directory (its LOCK file, released by the kernel when the holder dies, so a crashed holder
// never blocks the next command). While another process holds it we retry until the lock
// timeout, telling the caller once who holds it (from the holder file it leaves beside the db).
import { mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { AionError } from '../errors.js';
import type { BatchOp, KV, RangeOptions } from './kv.js';
import { describeHolder, holderPath, readHolder, type HolderInfo } from './holder.js';

export type { HolderInfo };

export interface OpenOptions {
  lockTimeoutMs: number;
  /** Called once, when the directory turns out to be held by someone else. */
  onWait?: (holder: HolderInfo | undefined) => void;
  /** Recorded in the holder file for others to read. */
  command?: string;
  /**
   * Called each time the directory is found held (before `onWait`), with the holder file's
   * contents. It may throw to stop waiting (e.g. the holder is a server to talk to instead).
   */
  whileWaiting?: (holder: HolderInfo | undefined) => Promise<void>;
}

export function dbPath(stateDir: string): string {
  return path.join(stateDir, 'db');
}

export function stateExists(stateDir: string): boolean {
  return existsSync(dbPath(stateDir));
}

function isLocked(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code === 'LEVEL_LOCKED' || /lock .*(held|temporarily unavailable)/i.test(e?.cause?.message ?? '');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class LevelKV implements KV {
  constructor(
    private readonly db: Level<string, Uint8Array>,
    private readonly stateDir: string,
  ) {}

  get(key: string) {
    return this.db.get(key);
  }
  getMany(keys: string[]) {
    return this.db.getMany(keys);
  }
  batch(ops: BatchOp[], options: { sync: boolean }) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return this.db.batch(ops as any, { sync: options.sync });
  }
  entries(range: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    return this.db.iterator(range);
  }
  keys(range: RangeOptions): AsyncIterable<string> {
    return this.db.keys(range);
  }
  async close() {
    rmSync(holderPath(this.stateDir), { force: true });
    await this.db.close();
  }
}

/**
 * Opens (creating if needed) the state directory's database.
 * Fails `state_busy` when another process still holds it after `lockTimeoutMs`, and
 * `store` when it cannot be opened for any other reason (permissions, corruption).
 */
export async function openLevel(stateDir: string, options: OpenOptions): Promise<KV> {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new AionError('store', `cannot create state directory ${stateDir}: ${(error as Error).message}`, { cause: error });
  }
  const deadline = Date.now() + options.lockTimeoutMs;
  let told = false;
  let delay = 25;
  for (;;) {
    const db = new Level<string, Uint8Array>(dbPath(stateDir), { keyEncoding: 'utf8', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (error) {
      if (!isLocked(error)) {
        throw new AionError('store', `cannot open state directory ${stateDir}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`, { cause: error });
      }
      const holder = readHolder(stateDir);
      await options.whileWaiting?.(holder);
      if (Date.now() >= deadline) {
        throw new AionError('state_busy', `state directory ${stateDir} is held by ${describeHolder(holder)}`, {
          details: { state_dir: stateDir, holder: holder ?? null },
          hint: 'wait for it to finish, or raise --lock-timeout',
        });
      }
      if (!told) {
        told = true;
        options.onWait?.(holder);
      }
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 250);
      continue;
    }
    try {
      const info: HolderInfo = { pid: process.pid, command: options.command ?? 'aion', since: new Date().toISOString() };
      writeFileSync(holderPath(stateDir), JSON.stringify(info) + '\n', { mode: 0o600 });
    } catch {
      // The holder file is advisory: failing to write it only makes waiting messages vaguer.
    }
    return new LevelKV(db, stateDir);
  }
}
