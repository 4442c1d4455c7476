// `aion serve` on a shared store (PostgreSQL): this process is one worker of the fleet. It
// registers, heartbeats and claims runs nobody drives (lease.ts), is woken by commands that
// signal its runs, and reloads the catalog when another process deploys (LISTEN/NOTIFY; a
// poll every POLL_MS stands in while the listening connection is down). No control socket:
// every other command talks to the database itself.
import type { Engine } from '../engine/engine.js';
import type { PgKV } from '../store/postgres.js';

const POLL_MS = 1000;

/** Starts the worker side; the returned function stops it (leases handed back by engine.close). */
export async function startFleetWorker(engine: Engine, onWarning?: (m: string) => void): Promise<() => void> {
  const fleet = engine.fleet!;
  const kv = engine.store.backend as PgKV;
  fleet.claiming = true;
  fleet.onRuns = (ids) => {
    for (const id of ids) engine.runs.enqueue(id);
  };
  await fleet.start();
  let warned = false;
  const listen = async () => {
    try {
      await kv.listen({ aion_wake: (payload) => fleet.wake(payload) }, (error) => {
        if (!warned) onWarning?.(`lost the LISTEN connection (${error.message}); polling for deploys until it is back`);
        warned = true;
      });
      warned = false;
    } catch (error) {
      if (!warned) onWarning?.(`cannot LISTEN for deploys (${(error as Error).message}); polling instead`);
      warned = true;
    }
  };
  await listen();
  const poll = setInterval(() => {
    if (kv.listening) return;
    void kv.refreshCatalog().catch(() => {});
    void listen();
  }, POLL_MS);
  return () => clearInterval(poll);
}
