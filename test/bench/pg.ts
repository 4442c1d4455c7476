// PostgreSQL rows of `npm run bench` (id `postgres`): the figures of the single-machine table
// that matter for a fleet, on the PostgreSQL backend, each against a baseline of the same run:
//   P1  cold start of `aion versions --json --store …` vs the same store as a state directory
//   P4  `aion unload --dry-run` with many runs vs few runs, both on PostgreSQL
//   P6  route flip under 8 concurrent starters on PostgreSQL: stall vs a start with no flip
//   P7f run throughput with 1, 2 and 3 `aion serve` workers (the scaling ratio vs 1 worker)
// Skips (loudly, returning no figures) when no PostgreSQL answers.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BIN, BENCH_DIR, ROOT, expectCode, figure, interleave, median, runAion, runNode, runWorker, type Figure } from './lib.js';
import { loadInto, packFixture, packVariant, seedRuns } from './setup.js';
import { dropSchema, freshSchema, pgServer, withSchema } from '../helpers/postgres.js';

const PG_WORKER = path.join(BENCH_DIR, 'pg-worker.js');

export interface PgSettings {
  quick: boolean;
  reps: number;
  seededRuns: number;
  parked: number;
}


function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function startServe(store: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: ROOT, env: { ...process.env, AION_STORE: store, AION_LEASE_MS: '1500' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (/listening on worker/.test(err)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`aion serve exited ${code}: ${err}`)));
  });
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  })));
}

export async function postgresBench(s: PgSettings, work: string): Promise<Figure[]> {
  const server = await pgServer();
  if ('skip' in server) {
    log(`SKIPPED postgres rows: ${server.skip}`);
    return [];
  }
  const schemas: string[] = [];
  const fresh = () => {
    const schema = freshSchema();
    schemas.push(schema);
    return withSchema(server.url, schema);
  };
  const figures: Figure[] = [];
  try {
    const pk = path.join(work, 'pk');
    const v1 = await packFixture('hello_v1', pk);
    const v2 = await packFixture('hello_v2', pk);

    // P1: cold start, the same 20 versions in a state directory and in PostgreSQL.
    const archives = [];
    for (let i = 0; i < 20; i++) archives.push((await packVariant('hello_v2', path.join(work, 'cold'), `v${String(i).padStart(2, '0')}`)).path);
    const coldDir = path.join(work, 'cold-state');
    await loadInto(coldDir, archives);
    const coldUrl = fresh();
    expectCode(await runAion(['migrate', '--from', coldDir, '--to', coldUrl, '--json']), 0, 'aion migrate');
    const cold = await interleave(s.reps * 2, async () => {
      const x = await runAion(['versions', '--json', '--store', coldUrl]);
      expectCode(x, 0, 'aion versions --store');
      return x.ms;
    }, async () => {
      const x = await runAion(['versions', '--json', '--state-dir', coldDir]);
      expectCode(x, 0, 'aion versions');
      return x.ms;
    });
    figures.push(figure({ id: 'pg_cold_start', figure: 'P1 on PostgreSQL: aion versions --json --store, 20 versions', baseline: 'the same on a state directory', unit: 'ms', samples: { subject: cold.a, baseline: cold.b }, target: { op: '<=', ratio: 1.5 }, notes: 'whole processes through bin/aion; the pg client is imported only with --store' }));

    // P4: unload decision, many runs vs few, both on PostgreSQL (seeded in a state directory, migrated).
    const seeded: Record<string, string> = {};
    for (const [name, runs, active] of [['small', 100, 10], ['large', s.seededRuns, Math.round(s.seededRuns / 10)]] as const) {
      const dir = path.join(work, `scale-${name}`);
      await loadInto(dir, [v1.path, v2.path]);
      await seedRuns(dir, { runs, active, pinnedOld: { type: v1.type, version: v1.version }, routed: { type: v2.type, version: v2.version } });
      const url = fresh();
      expectCode(await runAion(['migrate', '--from', dir, '--to', url, '--json']), 0, 'aion migrate (seeded)');
      seeded[name] = url;
    }
    const unload = async (url: string) => {
      const x = await runAion(['unload', v1.type, v1.version, '--dry-run', '--json', '--store', url]);
      expectCode(x, 4, 'aion unload --dry-run of a pinned version');
      return x.ms;
    };
    await unload(seeded.large!);
    await unload(seeded.small!);
    const u = await interleave(s.reps * 2, () => unload(seeded.large!), () => unload(seeded.small!));
    figures.push(figure({ id: 'pg_unload_scale', figure: `P4 on PostgreSQL: aion unload --dry-run decision, ${s.seededRuns.toLocaleString('en')} runs`, baseline: 'the same with 100 runs', unit: 'ms', samples: { subject: u.a, baseline: u.b }, target: { op: '<=', ratio: 1.5 } }));

    // P6: flip stall on PostgreSQL (the bench worker's flip, with the engine on a store URL).
    const base = await packVariant('hello_v2', path.join(work, 'flip'), 'base');
    const flips: string[] = [];
    for (let i = 0; i < (s.quick ? 4 : 8); i++) flips.push((await packVariant('hello_v2', path.join(work, 'flip'), `flip${i}`)).path);
    const flipUrl = fresh();
    const x = await runWorker<{ no_flip_latencies_ms: number[]; flip_stalls_ms: number[] }>(['flip', path.join(work, 'flip-unused'), base.path, String(s.quick ? 20 : 60), ...flips], { env: { AION_BENCH_STORE: flipUrl } });
    figures.push(figure({ id: 'pg_flip_stall', figure: 'P6 on PostgreSQL: route flip under 8 concurrent starters, longest start stall', baseline: 'a start with no flip (PostgreSQL)', unit: 'ms', samples: { subject: x.flip_stalls_ms, baseline: x.no_flip_latencies_ms }, target: { op: '<=', ratio: 2 } }));

    // Throughput with 1, 2, 3 workers: n runs parked on a signal, leased by the workers, then
    // signalled; runs per second until none is active.
    const approval = await packFixture('approval', pk);
    const perWorkers: Record<number, number[]> = { 1: [], 2: [], 3: [] };
    for (let rep = 0; rep < Math.max(1, Math.floor(s.reps / 2)); rep++) {
      for (const n of [1, 2, 3]) {
        const url = fresh();
        const workers: ChildProcess[] = [];
        try {
          for (let i = 0; i < n; i++) workers.push(await startServe(url));
          const parked = await runNode(PG_WORKER, ['park', url, approval.path, String(s.parked)]);
          expectCode(parked, 0, 'pg-worker park');
          // Leases handed back by the park process: wait for the workers to claim every run.
          for (let t = 0; t < 200; t++) {
            const w = await runAion(['workers', '--json', '--store', url]);
            const leased = (JSON.parse(w.stdout) as { workers: { runs: number }[] }).workers.reduce((a, b) => a + b.runs, 0);
            if (leased >= s.parked) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          const r = await runNode(PG_WORKER, ['drain', url, String(s.parked)]);
          expectCode(r, 0, 'pg-worker drain');
          perWorkers[n]!.push((JSON.parse(r.stdout) as { runs_per_s: number }).runs_per_s);
        } finally {
          await stopAll(workers);
        }
      }
    }
    for (const n of [1, 2, 3]) {
      figures.push(figure({
        id: `pg_throughput_${n}`,
        figure: `run throughput on PostgreSQL, ${n} aion serve worker${n === 1 ? '' : 's'} (${s.parked} parked runs signalled)`,
        baseline: n === 1 ? '(reported)' : '1 worker, same run',
        unit: 'runs/s',
        samples: { subject: perWorkers[n]!, baseline: n === 1 ? [] : perWorkers[1]! },
        target: n === 1 ? null : { op: '>=', ratio: 1 },
        notes: `median ${median(perWorkers[n]!).toFixed(0)} runs/s; signals from one process (16 at a time), runs driven by the workers that lease them; on ${'a machine of 2 shared cores'}: more workers add processes, not cores`,
      }));
    }
  } finally {
    for (const schema of schemas) await dropSchema(server.url, schema).catch(() => {});
  }
  return figures;
}
