// Copying a whole store between backends (aion migrate). The keyspace is the same on both, so
// a copy is every entry in key order. Lock order: the source, then the target. The target must
// hold nothing but a format record; a PostgreSQL target is written in ONE transaction (a
// failure leaves it empty), a state directory in batches (a failure leaves a partial copy,
// reported; the source is never written).
import { closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AionError } from '../errors.js';
import { diagnose, type DoctorReport } from '../engine/doctor.js';
import { FORMAT_KEY, K } from './keys.js'; // meta\x00… records (format, flush) are the store's own
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
        // A state directory keeps archives as files beside the database: a store without a
        // directory (PostgreSQL) gets them as a row per package row, as it stores its own.
        if (source.archives && !target.archives) {
          for await (const k of source.keys(K.packageMetaRange())) {
            const parts = k.split('\x00');
            const [type, version] = [parts[parts.length - 2]!, parts[parts.length - 1]!];
            const stored = source.archives.open(version);
            if (!stored) continue; // a format-1 row: its archive row was copied above (or doctor says it is missing)
            let bytes: Buffer;
            try {
              bytes = readFileSync(stored.file);
            } finally {
              closeSync(stored.fd);
            }
            await target.write([{ type: 'put', key: K.archive(type, version), value: bytes }], { sync: false });
            copied++;
          }
        }
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
