// The workers of a fleet on a shared store (--store / $AION_STORE), for `aion workers`,
// `status` and `top`: one definition of how they are read. Imports the PostgreSQL side only
// when a store URL is given; a state directory has no fleet (undefined).
import type { CommandContext } from './context.js';

export interface FleetWorker {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  last_seen: string;
  runs: number;
}

/** The live workers, or undefined without a shared store. Fails `store` when they cannot be read. */
export async function fleetWorkers(ctx: CommandContext): Promise<FleetWorker[] | undefined> {
  if (!ctx.globals.store) return undefined;
  const { AionError } = await import('../errors.js');
  const { PgKV } = await import('../store/postgres.js');
  const { listWorkers } = await import('../engine/lease.js');
  const kv = await PgKV.open(ctx.globals.store, { create: false });
  try {
    return (await listWorkers(kv)).map(({ id, host, pid, started_at, last_seen, runs }) => ({ id, host, pid, started_at, last_seen, runs }));
  } catch (error) {
    throw new AionError('store', `cannot list the workers: ${(error as Error).message}`, { cause: error });
  } finally {
    await kv.close();
  }
}

/** One line about the fleet for people: how many workers, and the runs they lease. */
export function fleetLine(workers: FleetWorker[]): string {
  if (workers.length === 0) return 'fleet: no live aion serve worker (runs wait for one)';
  const runs = workers.reduce((n, w) => n + w.runs, 0);
  return `fleet: ${workers.length} worker${workers.length === 1 ? '' : 's'} (${workers.map((w) => `${w.host}:${w.pid} ${w.runs} run${w.runs === 1 ? '' : 's'}`).join(', ')}), ${runs} run${runs === 1 ? '' : 's'} leased`;
}
