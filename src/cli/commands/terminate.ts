// aion terminate <workflow_id> [--reason <text>]
import type { Command } from 'commander';
import { action } from '../context.js';
import { withClient } from '../client.js';
import { statusText } from './show.js';
import type { Register } from './index.js';

export const registerTerminate: Register = (program: Command, streams) => {
  program
    .command('terminate')
    .summary("end a running workflow's current run")
    .description('End the current run of a workflow as terminated; it no longer pins its version.')
    .argument('<workflow_id>', 'the workflow id')
    .option('--reason <text>', 'why, recorded in its history', 'terminated by operator')
    .addHelpText(
      'after',
      `
Examples:
  $ aion terminate order-42 --reason "stuck on v1, superseded"`,
    )
    .action(
      action(async (ctx, workflowId: string, opts: { reason: string }) => {
        const result = await withClient(ctx, { write: false, command: `terminate ${workflowId}`, drivesRuns: true }, (client) =>
          client.terminate({ workflow_id: workflowId, reason: opts.reason }),
        );
        ctx.out.result(result, () => `${ctx.out.c.bold(result.workflow_id)} ${statusText(ctx.out, result.status)}  run ${result.run_id}`);
      }, streams),
    );
};
