// PostgreSQL benchmark subjects, each in a process of its own (started by test/bench/pg.ts):
//   park <store_url> <approval_archive> <n>   loads the archive and parks n runs on ctx.signal
//                                             (ids park-<i>), then exits, handing their leases back
//   drain <store_url> <n>                      signals park-0…park-<n-1> (16 at a time) and waits
//                                             until no run is active; prints the runs per second
// Under `node --test` it does nothing.
import { Engine } from '../../src/engine/engine.js';
import { K } from '../../src/store/keys.js';
import { UNDER_TEST_RUNNER, nowMs } from './lib.js';

async function open(store: string): Promise<Engine> {
  return Engine.open({ stateDir: '/nonexistent', store, create: true, lockTimeoutMs: 30_000, onWarning: () => {} });
}

async function park(store: string, archive: string, n: number): Promise<void> {
  const engine = await open(store);
  try {
    const { workflow_type: type } = await engine.loadPackage({ path: archive });
    for (let i = 0; i < n; i++) await engine.runs.start(type, { i }, { workflowId: `park-${i}` });
  } finally {
    await engine.close();
  }
  process.stdout.write(JSON.stringify({ parked: n }) + '\n');
}

async function active(engine: Engine): Promise<number> {
  let count = 0;
  for await (const _ of engine.store.keys(K.activeRange())) count++;
  return count;
}

async function drain(store: string, n: number): Promise<void> {
  const engine = await open(store);
  try {
    const t0 = nowMs();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < n) {
          const id = `park-${next++}`;
          await engine.runs.signal(id, 'approve', true);
        }
      }),
    );
    const signalled = nowMs() - t0;
    while ((await active(engine)) > 0) await new Promise((r) => setTimeout(r, 20));
    const ms = nowMs() - t0;
    process.stdout.write(JSON.stringify({ runs: n, ms, signal_ms: signalled, runs_per_s: (n * 1000) / ms }) + '\n');
  } finally {
    await engine.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  if (cmd === 'park') return park(args[0]!, args[1]!, Number(args[2]));
  if (cmd === 'drain') return drain(args[0]!, Number(args[1]));
  throw new Error(`unknown pg worker command ${cmd}`);
}

if (!UNDER_TEST_RUNNER) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
