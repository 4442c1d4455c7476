// Leased runs on the PostgreSQL backend. Every engine on PostgreSQL is a worker (a row of
// `aion_workers`, heartbeat `last_seen`); each active run is leased by one worker at a time
// (`aion_leases`: workflow id, worker, expires_at) and only the lessee drives it.
//
// Fencing: every write of a run record (`run/<id>`) goes through `fence` inside the writing
// transaction, after the per-workflow lock the store takes when it reads that record: a drive
// write (start, step, child start, timer) is refused with LeaseLost when another live worker
// leases the run, else it takes or renews the lease; a command write (signal, terminate: see
// asCommand) is let through without taking a live lease, and the lessee is woken by NOTIFY
// aion_wake. A worker whose lease ran out and was taken over therefore never records another
// step of that run, and the one that took it over replays it from its recorded history on its
// recorded version. A lease not renewed within the lease time (a killed worker) is claimed
// with FOR UPDATE SKIP LOCKED by the next worker's heartbeat.
//
// Failure behaviour: a failed heartbeat is a warning (the leases run out and move); LeaseLost
// rolls back the whole write it fenced.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { BatchOp } from '../store/kv.js';
import { K } from '../store/keys.js';
import type { PgKV } from '../store/postgres.js';
import { enableCommandContext, inCommand } from './lease-context.js';

/** Lease time (ms): how long a run stays with a worker that stopped renewing. AION_LEASE_MS overrides. */
export function leaseMs(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.AION_LEASE_MS);
  return Number.isFinite(n) && n >= 200 ? Math.round(n) : 10_000;
}

// Key prefixes of the keyspace (store/keys.ts): a workflow id follows each.
const RUN_PREFIX = K.run('');
const ACTIVE_KEY_PREFIX = K.active('');
const ACTIVE_PREFIX = Buffer.from(ACTIVE_KEY_PREFIX);

/** A drive write hit a run another live worker leases. */
export class LeaseLost extends Error {
  constructor(
    readonly workflowId: string,
    readonly worker: string,
  ) {
    super(`run ${workflowId} is leased by worker ${worker}`);
    this.name = 'LeaseLost';
  }
}


export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  kind: string;
  started_at: string;
  last_seen: string;
  runs: number;
}

export class Fleet {
  readonly id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly leaseMs = leaseMs();
  private heartbeat: NodeJS.Timeout | undefined;
  private registered = false;
  private stopped = false;
  /** Called with workflow ids this worker should look at (claimed, or woken by a command). */
  onRuns: ((workflowIds: string[]) => void) | undefined;
  /** Serve workers claim runs nobody drives; one-shot commands only drive their own. */
  claiming = false;
  onWarning: ((message: string) => void) | undefined;

  constructor(
    readonly kv: PgKV,
    readonly kind: 'serve' | 'command',
  ) {
    kv.fence = (ops) => this.fence(ops);
    enableCommandContext();
  }

  private interval(): string {
    return `${this.leaseMs} milliseconds`;
  }

  /** Registers this worker (idempotent) and starts its heartbeat. */
  async start(): Promise<void> {
    if (this.registered) return;
    this.registered = true;
    if (this.kind === 'serve') await this.kv.query('INSERT INTO aion_workers (id, host, pid, kind) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET last_seen = now()', [this.id, os.hostname(), process.pid, this.kind]);
    const every = Math.max(50, Math.floor(this.leaseMs / 3));
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.beat();
      } catch (error) {
        this.onWarning?.(`worker heartbeat failed: ${(error as Error).message}`);
      }
      if (!this.stopped) {
        this.heartbeat = setTimeout(tick, every);
        if (this.kind === 'command') this.heartbeat.unref();
      }
    };
    this.heartbeat = setTimeout(tick, every);
    if (this.kind === 'command') this.heartbeat.unref();
  }

  /** Renews this worker and its leases; a serve worker then claims runs nobody drives. */
  async beat(): Promise<string[]> {
    await this.kv.query('UPDATE aion_workers SET last_seen = now() WHERE id = $1', [this.id]);
    await this.kv.query(`UPDATE aion_leases SET expires_at = now() + $2::interval WHERE worker_id = $1`, [this.id, this.interval()]);
    if (!this.claiming) return [];
    const claimed = await this.claim();
    if (claimed.length > 0) this.onRuns?.(claimed);
    return claimed;
  }

  /**
   * Claims active runs whose lease ran out (their worker died) or that have none (migrated, or
   * left by a one-shot command): at most `limit` per call, skipping rows another worker is
   * claiming right now. Also drops leases of runs that are no longer active.
   */
  async claim(limit = 64): Promise<string[]> {
    const ids: string[] = [];
    const expired = await this.kv.query<{ workflow_id: string }>(
      `UPDATE aion_leases SET worker_id = $1, expires_at = now() + $2::interval
        WHERE workflow_id IN (SELECT workflow_id FROM aion_leases WHERE expires_at < now() ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING workflow_id`,
      [this.id, this.interval(), limit],
    );
    ids.push(...expired.rows.map((r) => r.workflow_id));
    const unleased = await this.kv.query<{ workflow_id: string }>(
      `INSERT INTO aion_leases (workflow_id, worker_id, expires_at)
         SELECT convert_from(substring(k.key from $4), 'UTF8'), $1, now() + $2::interval FROM aion_kv k
          WHERE k.key > $5 AND k.key < $6
            AND NOT EXISTS (SELECT 1 FROM aion_leases l WHERE l.workflow_id = convert_from(substring(k.key from $4), 'UTF8'))
          LIMIT $3
       ON CONFLICT (workflow_id) DO NOTHING RETURNING workflow_id`,
      [this.id, this.interval(), limit, ACTIVE_PREFIX.length + 1, ACTIVE_PREFIX, Buffer.concat([ACTIVE_PREFIX, Buffer.from([0xff])])],
    );
    ids.push(...unleased.rows.map((r) => r.workflow_id));
    // Leases of ended runs (kept until here so that an ending write never waits on this table).
    await this.kv.query(
      `DELETE FROM aion_leases l WHERE l.worker_id = $1 AND NOT EXISTS (SELECT 1 FROM aion_kv k WHERE k.key = $2 || convert_to(l.workflow_id, 'UTF8'))`,
      [this.id, ACTIVE_PREFIX],
    );
    return ids;
  }

  /**
   * Inside a write transaction: checks and takes the lease of every run record the batch
   * writes (see the top). Throws LeaseLost (the transaction rolls back) for a drive write to a
   * run another live worker leases.
   */
  private async fence(ops: BatchOp[]): Promise<void> {
    const ids = new Set<string>();
    for (const op of ops) if (op.type === 'put' && op.key.startsWith(RUN_PREFIX)) ids.add(op.key.slice(RUN_PREFIX.length));
    if (ids.size === 0) return;
    // The last op on each active marker: a run that stops being active gives its lease up here.
    const activeAfter = new Map<string, boolean>();
    for (const op of ops) if (op.key.startsWith(ACTIVE_KEY_PREFIX)) activeAfter.set(op.key.slice(ACTIVE_KEY_PREFIX.length), op.type === 'put');
    const isCommand = inCommand();
    for (const id of [...ids].sort()) {
      await this.kv.lockWorkflow(id);
      const other = await this.liveOther(id);
      if (other !== undefined) {
        if (!isCommand) throw new LeaseLost(id, other);
        await this.kv.query(`SELECT pg_notify('aion_wake', $1)`, [`${this.kv.target.schema} ${other} ${id}`]);
        if (activeAfter.get(id) === false) await this.kv.query('DELETE FROM aion_leases WHERE workflow_id = $1', [id]);
        continue;
      }
      if (activeAfter.get(id) === false) {
        await this.kv.query('DELETE FROM aion_leases WHERE workflow_id = $1', [id]);
        continue;
      }
      await this.take(id);
    }
  }

  /**
   * Inside a transaction holding the workflow's lock: the other live worker leasing this run,
   * if any. A lease of a run that is no longer active (ended meanwhile) leases nothing.
   */
  private async liveOther(workflowId: string): Promise<string | undefined> {
    const { rows } = await this.kv.query<{ worker_id: string; live: boolean; active: boolean }>(
      `SELECT l.worker_id, l.expires_at > now() AS live, EXISTS (SELECT 1 FROM aion_kv k WHERE k.key = $2) AS active
         FROM aion_leases l WHERE l.workflow_id = $1 FOR UPDATE`,
      [workflowId, Buffer.from(K.active(workflowId))],
    );
    const row = rows[0];
    return row && row.worker_id !== this.id && row.live && row.active ? row.worker_id : undefined;
  }

  /** Takes or renews the lease of a run for this worker (inside its transaction). */
  private async take(workflowId: string): Promise<void> {
    await this.start();
    await this.kv.query(
      `INSERT INTO aion_leases (workflow_id, worker_id, expires_at) VALUES ($1, $2, now() + $3::interval)
       ON CONFLICT (workflow_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, expires_at = EXCLUDED.expires_at`,
      [workflowId, this.id, this.interval()],
    );
  }

  /**
   * Whether this worker may drive a run now: it leases it, or nobody live does (then it takes
   * the lease). A run another live worker leases is left to it.
   */
  async mayDrive(workflowId: string): Promise<boolean> {
    return this.kv.hold(async () => {
      await this.kv.lockWorkflow(workflowId);
      if ((await this.liveOther(workflowId)) !== undefined) return false;
      await this.take(workflowId);
      return true;
    });
  }

  /**
   * How many runs pinning (type, version) another live worker leases (`versions`' live count
   * on a shared store; this process's own are those executing here, LiveRuns).
   */
  async liveRunsOn(workflowType: string, version: string): Promise<number> {
    const prefix = Buffer.from(K.runPin(workflowType, version, ''));
    const { rows } = await this.kv.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM aion_leases l WHERE l.expires_at > now() AND l.worker_id <> $2 AND EXISTS (SELECT 1 FROM aion_kv k WHERE k.key = $1 || convert_to(l.workflow_id, 'UTF8'))`,
      [prefix, this.id],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The other live worker leasing each of these workflows (absent: none; this process's own are LiveRuns'). */
  async lessees(workflowIds: string[]): Promise<Map<string, string>> {
    if (workflowIds.length === 0) return new Map();
    const { rows } = await this.kv.query<{ workflow_id: string; worker_id: string }>('SELECT workflow_id, worker_id FROM aion_leases WHERE workflow_id = ANY($1::text[]) AND expires_at > now() AND worker_id <> $2', [workflowIds, this.id]);
    return new Map(rows.map((r) => [r.workflow_id, r.worker_id]));
  }

  /** A NOTIFY aion_wake payload: a command wrote a run; wake it if this worker leases it. */
  wake(payload: string): void {
    // Space-separated: NOTIFY payloads are text (no NUL), and none of the three holds a space.
    const [schema, worker, id] = payload.split(' ');
    if (schema === this.kv.target.schema && worker === this.id && id) this.onRuns?.([id]);
  }

  /** Stops the heartbeat, hands back every lease (so others take the runs at once) and leaves the table. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearTimeout(this.heartbeat);
    if (!this.registered) return;
    await this.kv.query('DELETE FROM aion_leases WHERE worker_id = $1', [this.id]).catch(() => {});
    await this.kv.query('DELETE FROM aion_workers WHERE id = $1', [this.id]).catch(() => {});
  }
}

/**
 * The workers of the fleet (`aion workers`): every `aion serve` seen within three lease times,
 * with how many active runs each leases. Workers silent for longer are dropped from the table.
 */
export async function listWorkers(kv: PgKV, lease = leaseMs()): Promise<WorkerRow[]> {
  await kv.query(`DELETE FROM aion_workers WHERE last_seen < now() - $1::interval`, [`${lease * 30} milliseconds`]);
  const { rows } = await kv.query<{ id: string; host: string; pid: number; kind: string; started_at: Date; last_seen: Date; runs: string }>(
    `SELECT w.id, w.host, w.pid, w.kind, w.started_at, w.last_seen,
            (SELECT count(*) FROM aion_leases l WHERE l.worker_id = w.id AND l.expires_at > now()
               AND EXISTS (SELECT 1 FROM aion_kv k WHERE k.key = $2 || convert_to(l.workflow_id, 'UTF8')))::text AS runs
       FROM aion_workers w WHERE w.kind = 'serve' AND w.last_seen > now() - $1::interval ORDER BY w.started_at, w.id`,
    [`${lease * 3} milliseconds`, ACTIVE_PREFIX],
  );
  return rows.map((r) => ({ id: r.id, host: r.host, pid: r.pid, kind: r.kind, started_at: r.started_at.toISOString(), last_seen: r.last_seen.toISOString(), runs: Number(r.runs) }));
}
