// aion route <workflow_type> <version>
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

export interface RouteOptions {
  workflowType: string;
  /** A loaded version: the content hash or a unique prefix of ≥ 4 hex characters. */
  version: string;
  message?: string;
}

export async function runRoute(ctx: CommandContext, opts: RouteOptions): Promise<void> {
  const { workflowType, version } = opts;
  const result = await withClient(ctx, { write: false, command: `route ${workflowType} ${version}` }, (client) =>
    client.route({ workflow_type: workflowType, version, message: opts.message }),
  );
  const { c } = ctx.out;
  ctx.out.result(result, () => {
    const v = shortVersion(ctx.out, result.version);
    if (result.previous === result.version) return `route unchanged: ${result.workflow_type} → ${c.cyan(v)}`;
    const was = result.previous ? ` ${c.dim(`(was ${shortVersion(ctx.out, result.previous)})`)}` : '';
    return `${c.green('route')} ${result.workflow_type} → ${c.cyan(v)}${was}`;
  });
}

export const registerRoute: Register = (program: Command, streams) => {
  program
    .command('route')
    .summary('route new runs of a workflow type to an already-loaded version')
    .description(
      'Re-point new starts of a workflow type at a loaded version: a rollback or a roll-forward. ' +
        'Atomic, durable and idempotent. Runs already started keep their version.',
    )
    .argument('<workflow_type>', 'the workflow type (its entry module name)')
    .argument('<version>', 'a loaded version: the content hash or a unique prefix of ≥ 4 hex characters')
    .option('-m, --message <text>', 'note recorded in the deploy history')
    .addHelpText(
      'after',
      `
Examples:
  $ aion route hello 3f2a9c1b
  $ aion route hello 3f2a9c1b0d4e --json -m "roll back: v2 timeouts"`,
    )
    .action(
      action(async (ctx, workflowType: string, version: string, opts: Omit<RouteOptions, 'workflowType' | 'version'>) =>
        runRoute(ctx, { workflowType, version, ...opts }),
      streams),
    );
};
