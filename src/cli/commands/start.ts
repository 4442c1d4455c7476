// aion start <workflow_type> [--input <json>] [--id <workflow_id>]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { parseInput } from '../input.js';
import { escapeText, shortVersion } from '../render.js';
import { outcomeText, statusText } from './show.js';
import type { Register } from './index.js';

export interface StartOptions {
  workflowType: string;
  /** JSON text; absent means null. */
  input?: string;
  id?: string;
}

export async function runStart(ctx: CommandContext, opts: StartOptions): Promise<void> {
  const { workflowType } = opts;
  const input = parseInput(opts.input);
  const { result, final } = await withClient(ctx, { write: true, command: `start ${workflowType}`, drivesRuns: true }, async (client) => {
    const started = await client.start({ workflow_type: workflowType, input, workflow_id: opts.id });
    // For people: what the run ended with (its successor's, after continue-as-new).
    const ended = !ctx.out.json && started.status !== 'running' ? await client.show({ workflow_id: started.workflow_id }).catch(() => undefined) : undefined;
    return { result: started, final: ended };
  });
  ctx.out.result(result, () => {
    const head = `${ctx.out.c.bold(result.workflow_id)} ${statusText(ctx.out, result.status)}  ${escapeText(result.workflow_type)} ${ctx.out.c.cyan(shortVersion(ctx.out, result.version))}  run ${result.run_id}`;
    if (!final) return head;
    const successor = final.run_id !== result.run_id ? `\n  now    run ${final.run_id} ${statusText(ctx.out, final.status)}` : '';
    const outcome = outcomeText(ctx.out, final);
    return head + successor + (outcome ? '\n' + outcome : '');
  });
}

export const registerStart: Register = (program: Command, streams) => {
  program
    .command('start')
    .summary('start a run on the routed version of a workflow type')
    .description(
      'Start a run of a workflow type on the version its route points at now. The run keeps that version ' +
        'until it ends. Without a running aion serve, the run is driven in this process until it completes ' +
        'or waits (for a signal, a timer or a child); a waiting run stays in the state directory.',
    )
    .argument('<workflow_type>', 'the workflow type')
    .option('--input <json>', 'input of the run, as JSON text (default: null)')
    .option('--id <workflow_id>', 'workflow id (default: <type>-<random>)')
    .addHelpText(
      'after',
      `
Examples:
  $ aion start hello --input '{"name":"ada"}'
  $ aion start approval --id order-42 --json`,
    )
    .action(action(async (ctx, workflowType: string, opts: Omit<StartOptions, 'workflowType'>) => runStart(ctx, { workflowType, ...opts }), streams));
};
