// aion top [--interval <seconds>]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { fleetLine, fleetWorkers } from '../fleet.js';
import { usageError } from '../output.js';
import { shortVersion, table, versionsTable, when } from '../render.js';
import { statusText } from './show.js';
import { describeHolder } from '../../store/holder.js';
import type { Register } from './index.js';

export interface TopOptions {
  /** Seconds between refreshes, as typed (default 1; at least 0.1). */
  interval?: string;
}

export async function runTop(ctx: CommandContext, opts: TopOptions): Promise<void> {
  const interval = opts.interval ?? '1';
  const seconds = Number(interval);
  if (!Number.isFinite(seconds) || seconds < 0.1) throw usageError(`--interval must be a number of seconds ≥ 0.1, got '${interval}'`);
  const { out, globals } = ctx;
  if (!out.interactive) {
    const snapshot = await withClient(ctx, { write: false, command: 'top' }, async (client) => ({
      versions: await client.versions(),
      runs: await client.runs(),
    }));
    // On a shared store, the fleet too (`workers`, as aion workers lists them).
    const workers = await fleetWorkers(ctx);
    out.result(workers === undefined ? snapshot : { ...snapshot, workers }, () => {
      const { c } = out;
      const versions = snapshot.versions.length === 0
        ? 'no versions are loaded'
        : versionsTable(out, snapshot.versions);
      const runs = snapshot.runs.length === 0
        ? 'no runs'
        : table(out, ['WORKFLOW ID', 'TYPE', 'VERSION', 'STATUS', 'STARTED', 'UPDATED'], snapshot.runs.map((r) => [
            r.workflow_id, r.workflow_type, c.cyan(shortVersion(out, r.version)), statusText(out, r.status), when(out, r.started_at), when(out, r.updated_at),
          ]));
      return `${workers === undefined ? '' : `${fleetLine(workers)}\n\n`}${versions}\n\n${runs}`;
    });
    return;
  }
  const { openClient } = await import('../../client/client.js');
  const { runTopView } = await import('../views/top.js');
  // One client per refresh: the directory is held only while reading, so other commands
  // are never kept waiting by an open `aion top`.
  const fetch = async (note: (message: string | undefined) => void) => {
    const client = await openClient({
      stateDir: globals.stateDir,
      store: globals.store,
      lockTimeoutMs: globals.lockTimeoutMs,
      write: false,
      command: 'aion top',
      onWait: (holder) => note(`waiting for the state directory, held by ${describeHolder(holder)}`),
      onWarning: (message) => note(`warning: ${message}`),
    });
    try {
      const versions = await client.versions();
      const runs = await client.runs();
      const server = (client as { server?: { pid: number } }).server;
      const workers = await fleetWorkers(ctx);
      const via = workers !== undefined ? fleetLine(workers) : server ? `aion serve (pid ${server.pid})` : 'embedded';
      return { versions, runs, at: Date.now(), via };
    } finally {
      await client.close();
    }
  };
  await runTopView(out.streams, { out, fetch, intervalMs: Math.round(seconds * 1000), stateDir: globals.stateDir });
}

export const registerTop: Register = (program: Command, streams) => {
  program
    .command('top')
    .summary('live view of routes, versions and runs, refreshed every second (q quits)')
    .description(
      'On a terminal: a live view of the state directory — which version each workflow type is routed to, ' +
        'every loaded version with its state and pins, and the runs — refreshed every second; q quits. ' +
        'Works the same while aion serve holds the directory. Piped or with --json it prints one snapshot ' +
        '(versions, then runs) and exits.',
    )
    .option('--interval <seconds>', 'refresh interval in seconds', '1')
    .addHelpText(
      'after',
      `
Examples:
  $ aion top
  $ aion top --interval 5
  $ aion top --json | jq '.runs | length'`,
    )
    .action(
      action(async (ctx, opts: TopOptions) => runTop(ctx, opts), streams),
    );
};
