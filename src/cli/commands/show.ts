// aion show <workflow_id>
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import type { Output } from '../output.js';
import type { RunDetail } from '../../engine/types.js';
import { escapeText, shortVersion, when } from '../render.js';
import type { Register } from './index.js';

export function statusText(out: Output, status: string): string {
  const { c } = out;
  switch (status) {
    case 'running':
      return c.blue(status);
    case 'completed':
      return c.green(status);
    case 'failed':
      return c.red(status);
    case 'terminated':
      return c.magenta(status);
    default:
      return c.dim(status);
  }
}

/**
 * The line people want after a run stopped: its result or its error, cut to fit a line on a
 * terminal. Empty while the run is still running.
 */
export function outcomeText(out: Output, run: Pick<RunDetail, 'status' | 'result' | 'error' | 'run_id'>): string {
  if (run.status === 'completed') {
    const json = JSON.stringify(run.result);
    return `  result ${out.isTTY && json.length > 200 ? json.slice(0, 199) + '…' : json}`;
  }
  if (run.error) return `  ${out.c.red('error')}  ${escapeText(run.error.message)}`;
  return '';
}

export interface ShowOptions {
  workflowId: string;
}

export async function runShow(ctx: CommandContext, opts: ShowOptions): Promise<void> {
  const { workflowId } = opts;
  const run = await withClient(ctx, { write: false, command: `show ${workflowId}` }, (client) => client.show({ workflow_id: workflowId }));
  const { c } = ctx.out;
  ctx.out.result(run, () => {
    const lines = [
      `${c.bold(run.workflow_id)}  ${statusText(ctx.out, run.status)}`,
      `  type     ${escapeText(run.workflow_type)}`,
      `  version  ${c.cyan(shortVersion(ctx.out, run.version))}`,
      `  run      ${escapeText(run.run_id)}`,
      `  started  ${when(ctx.out, run.started_at)}`,
      `  updated  ${when(ctx.out, run.updated_at)}`,
    ];
    if (run.status === 'completed') lines.push(`  result   ${JSON.stringify(run.result)}`);
    if (run.error) lines.push(`  error    ${c.red(run.error.message)}`);
    lines.push('  history');
    for (const [i, e] of (run.history as { type: string; at: number }[]).entries()) {
      const { type, at, ...rest } = e;
      const detail = JSON.stringify(rest);
      lines.push(`    ${String(i + 1).padStart(3)}  ${c.dim(new Date(at).toISOString())}  ${escapeText(type)}${detail === '{}' ? '' : ' ' + c.dim(detail)}`);
    }
    return lines.join('\n');
  });
}

export const registerShow: Register = (program: Command, streams) => {
  program
    .command('show')
    .summary("show a workflow's current run: version, status, result and history")
    .description(
      "Show a workflow id's current run: its version, status, result or error, and its " +
        'history of events (with --json, the whole history). Exit 3 for an unknown id.',
    )
    .argument('<workflow_id>', 'the workflow id')
    .addHelpText(
      'after',
      `
Examples:
  $ aion show order-42
  $ aion show order-42 --json | jq '.history[] | .type'`,
    )
    .action(
      action(async (ctx, workflowId: string) => runShow(ctx, { workflowId }), streams),
    );
};
