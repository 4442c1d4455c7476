// aion history [workflow_type] [--limit N]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { usageError, type Output } from '../output.js';
import { shortVersion, table, when } from '../render.js';
import type { Register } from './index.js';

export function operationText(out: Output, operation: string): string {
  const { c } = out;
  return operation === 'load' ? c.green(operation) : operation === 'route' ? c.blue(operation) : operation === 'unload' ? c.magenta(operation) : operation === 'ramp' ? c.yellow(operation) : operation;
}

export function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw usageError(`--limit must be a whole number ≥ 1, got '${text}'`);
  return n;
}

export interface HistoryOptions {
  workflowType?: string;
  /** As typed: a whole number ≥ 1. */
  limit?: string;
}

export async function runHistory(ctx: CommandContext, opts: HistoryOptions): Promise<void> {
  const { workflowType } = opts;
  const limit = parseLimit(opts.limit);
  const history = await withClient(ctx, { write: false, command: 'history' }, (client) => client.history({ workflow_type: workflowType, limit }));
  const { out } = ctx;
  const { c } = out;
  out.result({ history }, () => {
    if (history.length === 0) {
      return out.isTTY ? c.dim(workflowType ? `no deploy history for '${workflowType}'` : 'no deploy history yet (aion load <archive>)') : '';
    }
    const none = out.isTTY ? c.dim('-') : '-';
    return table(
      out,
      ['TIME', 'USER', 'OPERATION', 'TYPE', 'VERSION', 'PREVIOUS', 'MESSAGE'],
      history.map((r) => [
        when(out, r.at),
        r.user,
        operationText(out, r.operation) + (r.operation === 'ramp' ? ` ${r.ramp ? `${r.ramp.percent}%` : 'cleared'}` : r.routed === false ? ' (no route)' : ''),
        // A package with several types: its own type, then the others it carries.
        r.workflow_types && r.workflow_types.length > 1 ? `${r.workflow_type} (+${r.workflow_types.filter((t) => t !== r.workflow_type).join(', ')})` : r.workflow_type,
        c.cyan(shortVersion(out, r.version)),
        r.previous ? shortVersion(out, r.previous) : none,
        r.message ?? '',
      ]),
    );
  });
}

export const registerHistory: Register = (program: Command, streams) => {
  program
    .command('history')
    .summary('show the deploy history: every load, route, ramp and unload, who and when')
    .description(
      'List the deploy audit log (of one workflow type, or all), oldest first and newest ' +
        'last: the time, the user ($AION_ACTOR or the OS user), the operation (load, route, ' +
        'ramp, unload), the version, the version routed before it (PREVIOUS) and the -m ' +
        'message. A rollback is recorded as a route with the message "rollback"; prune ' +
        'records its unloads with the message "prune".',
    )
    .argument('[workflow_type]', 'only this workflow type')
    .option('--limit <n>', 'only the newest n records')
    .addHelpText(
      'after',
      `
Examples:
  $ aion history
  $ aion history hello --limit 5
  $ aion history hello --json | jq -r '.history[-1].previous'`,
    )
    .action(
      action(async (ctx, workflowType: string | undefined, opts: Omit<HistoryOptions, 'workflowType'>) => runHistory(ctx, { workflowType, ...opts }), streams),
    );
};
