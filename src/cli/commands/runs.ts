// aion runs [--type T] [--version V] [--status S]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { usageError } from '../output.js';
import { shortVersion, table, when } from '../render.js';
import { statusText } from './show.js';
import type { Register } from './index.js';

const STATUSES = ['running', 'completed', 'failed', 'terminated', 'continued_as_new'];

export interface RunsOptions {
  type?: string;
  /** A version or a prefix of one. */
  version?: string;
  status?: string;
}

export async function runRuns(ctx: CommandContext, opts: RunsOptions): Promise<void> {
  if (opts.status !== undefined && !STATUSES.includes(opts.status)) {
    throw usageError(`unknown status '${opts.status}': expected one of ${STATUSES.join(', ')}`);
  }
  const filter = { type: opts.type, version: opts.version, status: opts.status };
  const runs = await withClient(ctx, { write: false, command: 'runs' }, (client) => client.runs(filter));
  ctx.out.result({ runs }, () => {
    if (runs.length === 0) return ctx.out.isTTY ? ctx.out.c.dim('no runs') : '';
    return table(
      ctx.out,
      ['WORKFLOW ID', 'TYPE', 'VERSION', 'STATUS', 'STARTED', 'UPDATED'],
      runs.map((r) => [r.workflow_id, r.workflow_type, ctx.out.c.cyan(shortVersion(ctx.out, r.version)), statusText(ctx.out, r.status), when(ctx.out, r.started_at), when(ctx.out, r.updated_at)]),
    );
  });
}

export const registerRuns: Register = (program: Command, streams) => {
  program
    .command('runs')
    .summary('list workflows and the state of their current run')
    .description(
      'List every workflow id with its current run: type, version, status and times, ' +
        'sorted by workflow id. Filter by type, by version (a prefix will do) and by status. ' +
        'Works the same while aion serve holds the state directory.',
    )
    .option('--type <workflow_type>', 'only this workflow type')
    .option('--version <version>', 'only runs on this version (or a prefix of it)')
    .option('--status <status>', `only this status: ${STATUSES.join(', ')}`)
    .addHelpText(
      'after',
      `
Examples:
  $ aion runs --status running
  $ aion runs --type approval --version 3f2a9c --json`,
    )
    .action(
      action(async (ctx, opts: RunsOptions) => runRuns(ctx, opts), streams),
    );
};
