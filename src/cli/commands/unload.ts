// aion unload <workflow_type> <version> [--dry-run]
import type { Command } from 'commander';
import { action } from '../context.js';
import { withClient } from '../client.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

export const registerUnload: Register = (program: Command, streams) => {
  program
    .command('unload')
    .summary('remove a version that nothing pins, with its persisted archive')
    .description(
      'Remove a loaded version and its archive from the state directory. Refused, changing nothing, ' +
        'while it is the routed version (exit 5) or while anything pins it (exit 4): an in-flight start, ' +
        'a live run, a recoverable run, or a child recorded with it that has not started yet.',
    )
    .argument('<workflow_type>', 'the workflow type')
    .argument('<version>', 'the version: content hash or a unique prefix of ≥ 4 hex characters')
    .option('--dry-run', 'check whether the unload would succeed, changing nothing')
    .option('-m, --message <text>', 'note recorded in the deploy history')
    .addHelpText(
      'after',
      `
Examples:
  $ aion unload hello 3f2a9c1b
  $ aion unload hello 3f2a9c1b --dry-run --json
  $ aion versions hello --json | jq -r '.versions[] | select(.state=="drained") | .version' \\
      | xargs -n1 aion unload hello`,
    )
    .action(
      action(async (ctx, workflowType: string, version: string, opts: { dryRun?: boolean; message?: string }) => {
        const result = await withClient(ctx, { write: false, command: `unload ${workflowType} ${version}` }, (client) =>
          client.unload({ workflow_type: workflowType, version, dry_run: opts.dryRun, message: opts.message }),
        );
        const { c } = ctx.out;
        ctx.out.result(result, () =>
          result.dry_run
            ? `${result.workflow_type} ${c.cyan(shortVersion(ctx.out, result.version))}: nothing pins it; unload would succeed (dry run)`
            : `${c.green('unloaded')} ${result.workflow_type} ${c.cyan(shortVersion(ctx.out, result.version))}`,
        );
      }, streams),
    );
};
