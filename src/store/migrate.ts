// Copying a whole store between backends (aion migrate). The keyspace is the same on both, so
// a copy is every entry in key order. Lock order: the source, then the target. The target must
// hold nothing but a format record; a PostgreSQL target is written in ONE transaction (a
// failure leaves it empty), a state directory in batches (a failure leaves a partial copy,
// reported; the source is never written).
import path from 'node:path';
import { AionError } from '../errors.js';
import { diagnose, type DoctorReport } from '../engine/doctor.js';
import { FORMAT_KEY } from './keys.js'; // meta\x00… records (format, flush) are the store's own
import type { BatchOp } from './kv.js';
import { Store } from './store.js';
import { redactUrl } from './postgres-schema.js';

const CHUNK = 256;

function isUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

async function openSide(where: string, create: boolean, lockTimeoutMs: number): Promise<Store> {
  if (isUrl(where)) return Store.openUrl(where, { create });
  return Store.open(path.resolve(where), { create, lockTimeoutMs, command: 'aion migrate' });
}

export interface MigrateReport {
  from: string;
  to: string;
  copied: number;
  doctor: DoctorReport;
}

/** Fails `usage` (same store twice), `conflict` (target not empty), `not_found`, `store`. */
export async function migrateStore(from: string, to: string, options: { lockTimeoutMs: number }): Promise<MigrateReport> {
  const shown = (s: string) => (isUrl(s) ? redactUrl(s) : path.resolve(s));
  if (shown(from) === shown(to)) throw new AionError('usage', `--from and --to name the same store (${shown(from)})`);
  if (!isUrl(from) && !isUrl(to)) throw new AionError('usage', 'one side of aion migrate must be a postgres:// URL (to copy a state directory, copy its folder)');
  const source = await openSide(from, false, options.lockTimeoutMs);
  try {
    if (!source.exists) throw new AionError('not_found', `nothing to migrate: ${shown(from)} does not exist`);
    const target = await openSide(to, true, options.lockTimeoutMs);
    try {
      let copied = 0;
      const copy = async () => {
        for await (const k of target.keys({})) {
          if (!k.startsWith('meta\x00')) {
            throw new AionError('conflict', `the target ${shown(to)} already holds records; aion migrate copies only into an empty store`, {
              details: { to: shown(to) },
              hint: 'pick an empty database schema (?schema=…) or a new state directory',
            });
          }
        }
        let ops: BatchOp[] = [];
        for await (const [key, value] of source.entries({})) {
          if (key === FORMAT_KEY || key.startsWith('meta\x00')) continue; // the store's own records
          ops.push({ type: 'put', key, value });
          if (ops.length >= CHUNK) {
            await target.write(ops, { sync: false });
            copied += ops.length;
            ops = [];
          }
        }
        if (ops.length > 0) await target.write(ops, { sync: false });
        copied += ops.length;
      };
      // One exclusive transaction on PostgreSQL (nothing visible until all is copied).
      await target.hold(copy, { exclusive: true });
      await target.flush();
      const doctor = await target.hold(() => diagnose(target), { exclusive: true });
      return { from: shown(from), to: shown(to), copied, doctor };
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
