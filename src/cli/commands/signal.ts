// aion signal <workflow_id> <name> [--input <json>]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { parseInput } from '../input.js';
import { outcomeText, statusText } from './show.js';
import type { Register } from './index.js';

export interface SignalOptions {
  workflowId: string;
  name: string;
  /** The payload as JSON text, as typed (default: null). */
  input?: string;
}

export async function runSignal(ctx: CommandContext, opts: SignalOptions): Promise<void> {
  const { workflowId, name } = opts;
  const input = parseInput(opts.input);
  const { result, final } = await withClient(ctx, { write: false, command: `signal ${workflowId} ${name}`, drivesRuns: true }, async (client) => {
    const signalled = await client.signal({ workflow_id: workflowId, name, input });
    const ended = !ctx.out.json && signalled.status !== 'running' ? await client.show({ workflow_id: workflowId }).catch(() => undefined) : undefined;
    return { result: signalled, final: ended };
  });
  ctx.out.result(result, () => {
    const head = `${ctx.out.c.bold(result.workflow_id)} ${statusText(ctx.out, result.status)}  run ${result.run_id}`;
    const outcome = final ? outcomeText(ctx.out, final) : '';
    return outcome ? `${head}\n${outcome}` : head;
  });
}

export const registerSignal: Register = (program: Command, streams) => {
  program
    .command('signal')
    .summary('send a signal to a running workflow')
    .description(
      "Deliver a named signal to a workflow's current run (it is buffered if the run is not waiting for it\n" +
        'yet), then drive the run until it completes or waits again.',
    )
    .argument('<workflow_id>', 'the workflow id')
    .argument('<name>', 'the signal name the workflow waits for (ctx.signal(name))')
    .option('--input <json>', 'signal payload, as JSON text (default: null)')
    .addHelpText(
      'after',
      `
Examples:
  $ aion signal order-42 approve --input '{"by":"ada"}'
  $ aion signal order-42 approve --json`,
    )
    .action(
      action(async (ctx, workflowId: string, name: string, opts: Omit<SignalOptions, 'workflowId' | 'name'>) =>
        runSignal(ctx, { workflowId, name, ...opts }),
      streams),
    );
};
