// aion prune [workflow_type] [--keep <n>] [--dry-run]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { usageError } from '../output.js';
import { shortVersion, table } from '../render.js';
import type { Register } from './index.js';

export interface PruneOptions {
  workflowType?: string;
  keep?: string;
  dryRun?: boolean;
  message?: string;
}

export async function runPrune(ctx: CommandContext, opts: PruneOptions): Promise<void> {
  const keep = opts.keep === undefined ? undefined : Number(opts.keep);
  if (opts.keep !== undefined && (!/^\d+$/.test(opts.keep) || !Number.isSafeInteger(keep))) throw usageError(`--keep must be a whole number ≥ 0, got '${opts.keep}'`);
  const result = await withClient(ctx, { write: false, command: 'prune' }, (client) =>
    client.prune({ workflow_type: opts.workflowType, keep, dry_run: opts.dryRun, message: opts.message }),
  );
  const { out } = ctx;
  const { c } = out;
  out.result(result, () => {
    const verb = result.dry_run ? 'would unload' : 'unloaded';
    const rows = [
      ...result.unloaded.map((u) => [u.workflow_type, c.cyan(shortVersion(out, u.version)), result.dry_run ? c.yellow(verb) : c.green(verb)]),
      ...result.kept.map((k) => [k.workflow_type, c.cyan(shortVersion(out, k.version)), c.dim(`kept: ${k.reason.replace('_', ' ')}`)]),
    ];
    if (rows.length === 0) return out.isTTY ? c.dim('nothing is loaded') : '';
    const summary = `${result.unloaded.length} ${verb}, ${result.kept.length} kept${result.dry_run ? ' (dry run, nothing changed)' : ''}`;
    return `${table(out, ['TYPE', 'VERSION', 'OUTCOME'], rows)}\n${summary}`;
  });
}

export const registerPrune: Register = (program: Command, streams) => {
  program
    .command('prune')
    .summary('unload drained versions, keeping the ones a rollout may need')
    .description(
      'Unload every drained version (of one workflow type, or all) except the routed one, ' +
        'the ramping one, the rollback target (where aion rollback goes) and the n most ' +
        'recently loaded of the rest. Versions still pinned are kept. All of it in one ' +
        'atomic write, recorded in the deploy history as unloads with the message "prune".',
    )
    .argument('[workflow_type]', 'only this workflow type')
    .option('--keep <n>', 'also keep the n most recently loaded other versions', '1')
    .option('--dry-run', 'report what would be unloaded, changing nothing')
    .option('-m, --message <text>', 'note recorded in the deploy history (default: "prune")')
    .addHelpText(
      'after',
      `
Examples:
  $ aion prune --dry-run
  $ aion prune approval --keep 0 --json`,
    )
    .action(action(async (ctx, workflowType: string | undefined, opts: Omit<PruneOptions, 'workflowType'>) => runPrune(ctx, { workflowType, ...opts }), streams));
};
