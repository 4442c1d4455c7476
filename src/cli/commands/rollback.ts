// aion rollback <workflow_type> [-m text] [--dry-run]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

export interface RollbackOptions {
  workflowType: string;
  /** Recorded in the deploy history (default: "rollback"). */
  message?: string;
  dryRun?: boolean;
}

export async function runRollback(ctx: CommandContext, opts: RollbackOptions): Promise<void> {
  const { workflowType } = opts;
  const result = await withClient(ctx, { write: false, command: `rollback ${workflowType}` }, (client) =>
    client.rollback({ workflow_type: workflowType, message: opts.message, dry_run: opts.dryRun }),
  );
  const { out } = ctx;
  const { c } = out;
  out.result({ ...result, ...(opts.dryRun ? { dry_run: true } : {}) }, () => {
    const v = c.cyan(shortVersion(out, result.version));
    const was = result.previous ? ` ${c.dim(`(was ${shortVersion(out, result.previous)})`)}` : '';
    return opts.dryRun
      ? `would roll back: route ${result.workflow_type} → ${v}${was} (dry run, nothing changed)`
      : `${c.green('rolled back')} ${result.workflow_type} → ${v}${was}`;
  });
}

export const registerRollback: Register = (program: Command, streams) => {
  program
    .command('rollback')
    .summary('route new runs of a workflow type back to the version routed before the current one')
    .description(
      'Route new starts of a workflow type back to the version that was routed before the current one, ' +
        'as the deploy history records it (the PREVIOUS of the load or route that made the current version ' +
        'routed). Recorded as a route with the message "rollback" (or -m). Rolling back twice returns to ' +
        'where you started, like `cd -`. Refused (exit 3) when nothing was routed before, or when that ' +
        'version has been unloaded since; then pick one with aion versions and aion route.',
    )
    .argument('<workflow_type>', 'the workflow type')
    .option('-m, --message <text>', 'note recorded in the deploy history (default: "rollback")')
    .option('--dry-run', 'report which version it would route to, changing nothing')
    .addHelpText(
      'after',
      `
Examples:
  $ aion rollback hello
  $ aion rollback hello --dry-run --json
  $ aion rollback order -m "v7 double-charges; back to v6"`,
    )
    .action(
      action(async (ctx, workflowType: string, opts: Omit<RollbackOptions, 'workflowType'>) => runRollback(ctx, { workflowType, ...opts }), streams),
    );
};
