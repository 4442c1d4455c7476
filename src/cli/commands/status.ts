// aion status [workflow_type]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { fleetLine, fleetWorkers } from '../fleet.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

export interface StatusOptions {
  workflowType?: string;
}

export async function runStatus(ctx: CommandContext, opts: StatusOptions): Promise<void> {
  const types = await withClient(ctx, { write: false, command: 'status' }, (client) => client.status({ workflow_type: opts.workflowType }));
  // On a shared store: the fleet that executes these runs (`workers`, as aion workers lists them).
  const workers = await fleetWorkers(ctx);
  const { out } = ctx;
  const { c } = out;
  out.result(workers === undefined ? { types } : { types, workers }, () => {
    const fleet = workers === undefined ? '' : `${fleetLine(workers)}\n\n`;
    if (types.length === 0) return fleet + (out.isTTY ? c.dim('no versions are loaded (aion load <archive>)') : '');
    const v = (version: string) => c.cyan(shortVersion(out, version));
    const blocks = types.map((t) => {
      const running = (version: string) => {
        const n = t.runs[version]?.running ?? 0;
        return n > 0 ? c.dim(` (${n} running)`) : '';
      };
      const lines = [c.bold(t.workflow_type)];
      lines.push(`  routed    ${t.routed ? `${v(t.routed)}${t.label ? ` ${t.label}` : ''}${t.source === 'startup' ? ` ${c.magenta('startup (serve --package)')}` : ''}${running(t.routed)}` : c.yellow('nothing (aion route)')}`);
      if (t.ramping) lines.push(`  ramping   ${v(t.ramping.version)} ${c.magenta(`${t.ramping.percent}%`)}${t.ramping.label ? ` ${t.ramping.label}` : ''}${running(t.ramping.version)}`);
      lines.push(`  rollback  ${t.rollback_target ? v(t.rollback_target) : c.dim('none')}`);
      for (const d of t.draining) {
        const pins = [d.pins.live && `${d.pins.live} live`, d.pins.recoverable && `${d.pins.recoverable} recoverable`, d.pins.recorded_children && `${d.pins.recorded_children} recorded children`].filter(Boolean).join(', ');
        lines.push(`  draining  ${v(d.version)} ${c.yellow(pins)}`);
      }
      if (t.drained.length > 0) lines.push(`  drained   ${t.drained.map(v).join(' ')}`);
      return lines.join('\n');
    });
    const next = out.isTTY ? '\n' + c.dim('next: aion ramp <type> <version> <percent> · aion route · aion wait ... --drained · aion prune') : '';
    return fleet + blocks.join('\n\n') + next;
  });
}

export const registerStatus: Register = (program: Command, streams) => {
  program
    .command('status')
    .summary('where each rollout is: routed, ramping, rollback target, draining')
    .description(
      'One summary per workflow type: the routed version, the ramping one and its share, ' +
        'the rollback target, the versions still draining (with their pins) and the drained ' +
        'ones, and the running runs per version.',
    )
    .argument('[workflow_type]', 'only this workflow type')
    .addHelpText(
      'after',
      `
Examples:
  $ aion status
  $ aion status approval --json | jq '.types[0].ramping'`,
    )
    .action(action(async (ctx, workflowType: string | undefined) => runStatus(ctx, { workflowType }), streams));
};
