// aion workers: the `aion serve` workers of a fleet on a shared store (--store / $AION_STORE).
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { fleetWorkers } from '../fleet.js';
import { table } from '../render.js';
import type { Register } from './index.js';

export type WorkersOptions = Record<string, never>;

/** Prints the live workers; `usage` without a shared store, `store` when they cannot be read. */
export async function runWorkers(ctx: CommandContext, _opts: WorkersOptions = {}): Promise<void> {
  const workers = await fleetWorkers(ctx);
  if (workers === undefined) {
    const { AionError } = await import('../../errors.js');
    throw new AionError('usage', 'aion workers needs a shared store: pass --store postgres://… (or set $AION_STORE)', { hint: 'a state directory has no workers besides the one aion serve holding it' });
  }
  ctx.out.result({ workers }, () =>
    workers.length === 0
      ? 'no live workers'
      : table(ctx.out, ['ID', 'HOST', 'PID', 'STARTED', 'LAST SEEN', 'RUNS'], workers.map((w) => [w.id, w.host, String(w.pid), w.started_at, w.last_seen, String(w.runs)])),
  );
}

export const registerWorkers: Register = (program: Command, streams) => {
  program
    .command('workers')
    .summary('list the aion serve workers of a fleet (PostgreSQL store)')
    .description(
      'List every aion serve worker of the shared store (--store or $AION_STORE) seen within three lease times: ' +
        'its id, host, pid, when it started, when it last renewed its leases, and how many active runs it leases.',
    )
    .addHelpText('after', `\nExamples:\n  $ aion workers --store postgres://postgres@127.0.0.1:5432/aion\n  $ AION_STORE=postgres://db/aion aion workers --json`)
    .action(action(async (ctx) => runWorkers(ctx, {}), streams));
};
