// aion ramp <workflow_type> <version> <percent> · aion ramp <workflow_type> --clear
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { usageError } from '../output.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

export interface RampOptions {
  workflowType: string;
  version?: string;
  /** As typed: `10`, `12.5`, `5%`. */
  percent?: string;
  clear?: boolean;
  dryRun?: boolean;
  message?: string;
}

/** `10`, `12.5`, `0.25`, `5%` → a number; anything else (or out of (0, 100)) is `usage`. */
export function parsePercent(text: string): number {
  const m = /^(\d{1,2}(?:\.\d{1,2})?)%?$/.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!(n > 0 && n < 100)) {
    throw usageError(`percent must be a number greater than 0 and less than 100 with at most two decimals, got '${text}'`, 'e.g. aion ramp approval 3f2a9c1b 10');
  }
  return n;
}

export async function runRamp(ctx: CommandContext, opts: RampOptions): Promise<void> {
  if (opts.clear && (opts.version !== undefined || opts.percent !== undefined)) {
    throw usageError('give a version and a percent, or --clear, not both', `aion ramp ${opts.workflowType} --clear`);
  }
  if (!opts.clear && (opts.version === undefined || opts.percent === undefined)) {
    throw usageError('missing the version and the percent (or --clear to end the ramp)', `aion ramp ${opts.workflowType} <version> <percent>`);
  }
  const percent = opts.percent === undefined ? undefined : parsePercent(opts.percent);
  const result = await withClient(ctx, { write: false, command: `ramp ${opts.workflowType}` }, (client) =>
    client.ramp({ workflow_type: opts.workflowType, version: opts.version, percent, clear: opts.clear, dry_run: opts.dryRun, message: opts.message }),
  );
  const { out } = ctx;
  const { c } = out;
  out.result(result, () => {
    const dry = result.dry_run ? ' (dry run, nothing changed)' : '';
    const routed = result.routed ? c.cyan(shortVersion(out, result.routed)) : c.dim('nothing');
    const prev = result.previous_ramp ? ` ${c.dim(`(was ${shortVersion(out, result.previous_ramp.version)} at ${result.previous_ramp.percent}%)`)}` : '';
    if (!result.ramping) {
      return result.previous_ramp
        ? `${c.green('ramp cleared')} ${result.workflow_type}: every new start → ${routed}${prev}${dry}`
        : `no ramp: every new start of ${result.workflow_type} → ${routed}${dry}`;
    }
    return [
      `${c.green('ramp')} ${result.workflow_type} → ${c.cyan(shortVersion(out, result.ramping.version))} for ${c.bold(`${result.ramping.percent}%`)} of new starts${prev}${dry}`,
      `the rest → ${routed} (routed); promote with: aion route ${result.workflow_type} ${result.ramping.version.slice(0, 12)}`,
    ].join('\n');
  });
}

export const registerRamp: Register = (program: Command, streams) => {
  program
    .command('ramp')
    .summary('send a percentage of new starts to a second version')
    .description(
      'Send a percentage of new starts of a workflow type to a loaded version; the rest keep ' +
        'going to the routed one. The side a start takes depends on its workflow id alone ' +
        '(sha256 of the id), so an id always lands on the same side, children and ' +
        'continue-as-new successors included. Promote with aion route (or roll back with ' +
        'aion rollback): both clear the ramp. The ramping version cannot be unloaded.',
    )
    .argument('<workflow_type>', 'the workflow type')
    .argument('[version]', 'the version to ramp to: content hash or unique prefix (≥ 4 hex)')
    .argument('[percent]', 'share of new starts, 0 < percent < 100, two decimals at most')
    .option('--clear', 'end the ramp: every new start goes to the routed version')
    .option('--dry-run', 'report what would change, changing nothing')
    .option('-m, --message <text>', 'note recorded in the deploy history')
    .addHelpText(
      'after',
      `
Examples:
  $ aion ramp approval 3f2a9c1b 10
  $ aion ramp approval 3f2a9c1b 12.5 -m "canary" --json
  $ aion status approval
  $ aion route approval 3f2a9c1b        # promote: 100%, ramp cleared
  $ aion ramp approval --clear          # abandon: back to the routed version`,
    )
    .action(
      action(async (ctx, workflowType: string, version: string | undefined, percent: string | undefined, opts: { clear?: boolean; dryRun?: boolean; message?: string }) =>
        runRamp(ctx, { workflowType, version, percent, ...opts }),
      streams),
    );
};
