// aion versions [workflow_type]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { versionsTable } from '../render.js';
import type { Register } from './index.js';

export interface VersionsOptions {
  workflowType?: string;
}

export async function runVersions(ctx: CommandContext, opts: VersionsOptions): Promise<void> {
  const { workflowType } = opts;
  const versions = await withClient(ctx, { write: false, command: 'versions' }, (client) => client.versions({ workflow_type: workflowType }));
  const { c } = ctx.out;
  ctx.out.result({ versions }, () => {
    if (versions.length === 0) {
      return ctx.out.isTTY
        ? c.dim(workflowType ? `no versions of '${workflowType}' are loaded` : 'no versions are loaded (aion load <archive>)')
        : '';
    }
    const text = versionsTable(ctx.out, versions);
    // A legend for people; piped output stays the bare table.
    if (!ctx.out.isTTY) return text;
    // Two dimmed lines: a line break inside a colour call would be shown escaped.
    return `${text}\n${c.dim(`${c.green('routed')}: new starts go here · ${c.magenta('ramping')}: a share of them · ${c.yellow('draining')}: still pinned`)}\n${c.dim('drained: nothing pins it (aion unload, aion prune) · rollback target: where aion rollback goes')}`;
  });
}

export const registerVersions: Register = (program: Command, streams) => {
  program
    .command('versions')
    .summary('list loaded versions, which one is routed, and what still pins each')
    .description(
      'List every loaded version (of one workflow type, or all), sorted by type and load time, with ' +
        'its state: routed (new starts go there), ramping (a percentage of them, see aion ramp), ' +
        'draining (still pinned by runs or recorded children) or drained (nothing pins it: safe to ' +
        'unload). NOTE marks the rollback target and shows the author label.',
    )
    .argument('[workflow_type]', 'only this workflow type')
    .addHelpText(
      'after',
      `
Examples:
  $ aion versions
  $ aion versions hello --json
  $ aion versions --json | jq -r '.versions[] | select(.state == "drained")'`,
    )
    .action(action(async (ctx, workflowType: string | undefined) => runVersions(ctx, { workflowType }), streams));
};
