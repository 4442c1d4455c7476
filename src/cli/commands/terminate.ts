// aion terminate <workflow_id> [--reason <text>]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { statusText } from './show.js';
import type { Register } from './index.js';

const DEFAULT_REASON = 'terminated by operator';

export interface TerminateOptions {
  workflowId: string;
  /** Recorded in the run's history (default: "terminated by operator"). */
  reason?: string;
}

export async function runTerminate(ctx: CommandContext, opts: TerminateOptions): Promise<void> {
  const { workflowId } = opts;
  const result = await withClient(ctx, { write: false, command: `terminate ${workflowId}`, drivesRuns: true }, (client) =>
    client.terminate({ workflow_id: workflowId, reason: opts.reason ?? DEFAULT_REASON }),
  );
  ctx.out.result(result, () => `${ctx.out.c.bold(result.workflow_id)} ${statusText(ctx.out, result.status)}  run ${result.run_id}`);
}

export const registerTerminate: Register = (program: Command, streams) => {
  program
    .command('terminate')
    .summary("end a running workflow's current run")
    .description('End the current run of a workflow as terminated; it no longer pins its version.')
    .argument('<workflow_id>', 'the workflow id')
    .option('--reason <text>', 'why, recorded in its history', DEFAULT_REASON)
    .addHelpText(
      'after',
      `
Examples:
  $ aion terminate order-42 --reason "stuck on v1, superseded"`,
    )
    .action(
      action(async (ctx, workflowId: string, opts: Omit<TerminateOptions, 'workflowId'>) => runTerminate(ctx, { workflowId, ...opts }), streams),
    );
};
