// aion workers: the `aion serve` workers of a fleet on a shared store (--store / $AION_STORE).
import type { Command } from 'commander';
import { action } from '../context.js';
import type { Register } from './index.js';

export const registerWorkers: Register = (program: Command, streams) => {
  program
    .command('workers')
    .summary('list the aion serve workers of a fleet (PostgreSQL store)')
    .description(
      'List every aion serve worker of the shared store (--store or $AION_STORE) seen within three lease times: ' +
        'its id, host, pid, when it started, when it last renewed its leases, and how many active runs it leases.',
    )
    .addHelpText('after', `\nExamples:\n  $ aion workers --store postgres://postgres@127.0.0.1:5432/aion\n  $ AION_STORE=postgres://db/aion aion workers --json`)
    .action(
      action(async (ctx) => {
        const { AionError } = await import('../../errors.js');
        if (!ctx.globals.store) {
          throw new AionError('usage', 'aion workers needs a shared store: pass --store postgres://… (or set $AION_STORE)', { hint: 'a state directory has no workers besides the one aion serve holding it' });
        }
        const { PgKV } = await import('../../store/postgres.js');
        const { listWorkers } = await import('../../engine/lease.js');
        const kv = await PgKV.open(ctx.globals.store, { create: false });
        let workers;
        try {
          workers = await listWorkers(kv);
        } catch (error) {
          throw new AionError('store', `cannot list the workers: ${(error as Error).message}`, { cause: error });
        } finally {
          await kv.close();
        }
        ctx.out.result({ workers: workers.map(({ kind: _kind, ...w }) => w) }, () =>
          workers.length === 0
            ? 'no live workers'
            : ['ID  HOST  PID  STARTED  LAST SEEN  RUNS', ...workers.map((w) => `${w.id}  ${w.host}  ${w.pid}  ${w.started_at}  ${w.last_seen}  ${w.runs}`)].join('\n'),
        );
      }, streams),
    );
};
