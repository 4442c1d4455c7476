// aion versions [workflow_type]
import type { Command } from 'commander';
import { action } from '../context.js';
import { withClient } from '../client.js';
import { shortVersion, table, when } from '../render.js';
import type { Register } from './index.js';

export const registerVersions: Register = (program: Command, streams) => {
  program
    .command('versions')
    .summary('list loaded versions, which one is routed, and what still pins each')
    .description(
      'List every loaded version (of one workflow type, or all), sorted by type and load time, with its ' +
        'state: routed (new starts go there), draining (not routed, still pinned by runs or recorded ' +
        'children) or drained (nothing pins it: safe to unload).',
    )
    .argument('[workflow_type]', 'only this workflow type')
    .addHelpText(
      'after',
      `
Examples:
  $ aion versions
  $ aion versions hello --json
  $ aion versions --json | jq -r '.versions[] | select(.state == "drained") | .version'`,
    )
    .action(
      action(async (ctx, workflowType: string | undefined) => {
        const versions = await withClient(ctx, { write: false, command: 'versions' }, (client) => client.versions({ workflow_type: workflowType }));
        const { c } = ctx.out;
        ctx.out.result({ versions }, () => {
          if (versions.length === 0) {
            return ctx.out.isTTY
              ? c.dim(workflowType ? `no versions of '${workflowType}' are loaded` : 'no versions are loaded (aion load <archive>)')
              : '';
          }
          const rows = versions.map((v) => [
            v.workflow_type,
            c.cyan(shortVersion(ctx.out, v.version)),
            v.state === 'routed' ? c.green('routed') : v.state === 'draining' ? c.yellow('draining') : c.dim('drained'),
            String(v.pins.live),
            String(v.pins.recoverable),
            String(v.pins.recorded_children),
            when(ctx.out, v.loaded_at),
          ]);
          const text = table(ctx.out, ['TYPE', 'VERSION', 'STATE', 'LIVE', 'RECOVERABLE', 'CHILDREN', 'LOADED'], rows);
          // A legend for people; piped output stays the bare table.
          if (!ctx.out.isTTY) return text;
          return `${text}\n${c.dim(`${c.green('routed')}: new starts go here · ${c.yellow('draining')}: still pinned by runs or children · drained: nothing pins it (aion unload)`)}`;
        });
      }, streams),
    );
};
