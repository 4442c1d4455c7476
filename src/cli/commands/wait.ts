// aion wait <workflow_type> <version> (--drained | --routed | --unloaded) [--timeout d] [--interval d]
import type { Command } from 'commander';
import { AionError } from '../../errors.js';
import { describeHolders, holdersHint } from '../../engine/holders.js';
import { action, type CommandContext } from '../context.js';
import { usageError } from '../output.js';
import { shortVersion } from '../render.js';
import { describeMs, lookAt, parseDuration, poll, type VersionLook } from '../waiting.js';
import type { Register } from './index.js';

export type WaitCondition = 'drained' | 'routed' | 'unloaded';

export interface WaitOptions {
  workflowType: string;
  version: string;
  drained?: boolean;
  routed?: boolean;
  unloaded?: boolean;
  timeout?: string;
  interval?: string;
}

export async function runWait(ctx: CommandContext, opts: WaitOptions): Promise<void> {
  const conditions = (['drained', 'routed', 'unloaded'] as const).filter((k) => opts[k]);
  if (conditions.length !== 1) throw usageError('give exactly one of --drained, --routed or --unloaded', `aion wait ${opts.workflowType} ${opts.version} --drained --timeout 10m`);
  const condition: WaitCondition = conditions[0]!;
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout, '--timeout');
  const intervalMs = opts.interval === undefined ? 1000 : parseDuration(opts.interval, '--interval');
  if (intervalMs < 10) throw usageError(`--interval must be at least 10ms, got '${opts.interval}'`);
  const { workflowType, version: ref } = opts;
  let full: string | undefined;
  const result = await poll<Record<string, unknown>, VersionLook>(
    ctx,
    { timeoutMs, intervalMs, command: `wait ${workflowType} ${ref}` },
    async (client) => {
      const look = await lookAt(client, workflowType, ref);
      if (!look) {
        if (condition === 'unloaded') return { done: { workflow_type: workflowType, version: full ?? ref, unloaded: true } as Record<string, unknown> };
        throw new AionError('not_found', `version '${ref}' of '${workflowType}' is not loaded, so it cannot become ${condition}`, {
          details: { workflow_type: workflowType, version: ref },
          hint: `see the loaded versions with 'aion versions ${workflowType}'`,
        });
      }
      full = look.version;
      if (look.entry && look.entry.state === condition) return { done: look.entry as unknown as Record<string, unknown> };
      return { look };
    },
    (last) => {
      const state = last.entry?.state ?? 'loaded';
      const what = `${workflowType} ${last.version.slice(0, 12)}`;
      const pinned = last.holders.holders_total > 0 ? `, pinned by ${last.holders.holders_total}: ${describeHolders(last.holders.holders, last.holders.holders_total)}` : '';
      return new AionError('timeout', `timed out after ${describeMs(timeoutMs!)} waiting for ${what} to be ${condition}: it is ${state}${condition === 'drained' ? pinned : ''}`, {
        details: {
          workflow_type: workflowType,
          version: last.version,
          condition,
          state: last.entry ?? null,
          ...(condition === 'drained' ? { holders: last.holders.holders, holders_total: last.holders.holders_total } : {}),
        },
        hint: condition === 'drained'
          ? state === 'routed' || state === 'ramping'
            ? `it is ${state}: route another version first (aion route), or clear the ramp (aion ramp ${workflowType} --clear)`
            : holdersHint(workflowType, last.version, last.holders.holders)
          : condition === 'routed'
            ? `route it: aion route ${workflowType} ${last.version.slice(0, 12)}`
            : `unload it: aion unload ${workflowType} ${last.version.slice(0, 12)} --wait 10m`,
      });
    },
  );
  const { out } = ctx;
  out.result(result, () => `${opts.workflowType} ${out.c.cyan(shortVersion(out, String(result.version)))} is ${out.c.green(condition)}`);
}

export const registerWait: Register = (program: Command, streams) => {
  program
    .command('wait')
    .summary('block until a version is drained, routed or unloaded')
    .description(
      'Block until the version is drained (nothing pins it), routed, or unloaded, then print ' +
        'its versions entry and exit 0. Past --timeout it fails with exit 12 (timeout), the ' +
        'state at that moment in the error and, for --drained, the holders. The state ' +
        'directory is not held between looks.',
    )
    .argument('<workflow_type>', 'the workflow type')
    .argument('<version>', 'the version: content hash or unique prefix (≥ 4 hex)')
    .option('--drained', 'wait until nothing pins it (safe to unload)')
    .option('--routed', 'wait until new starts go to it')
    .option('--unloaded', 'wait until it is no longer loaded')
    .option('--timeout <duration>', 'give up after this long: 90s, 10m, 1h (default: never)')
    .option('--interval <duration>', 'time between looks (default: 1s)')
    .addHelpText(
      'after',
      `
Examples:
  $ aion wait approval 3f2a9c1b --drained --timeout 10m
  $ aion wait approval 3f2a9c1b --unloaded --interval 5s
  $ aion wait approval 3f2a9c1b --routed --timeout 30s --json`,
    )
    .action(
      action(async (ctx, workflowType: string, version: string, opts: Omit<WaitOptions, 'workflowType' | 'version'>) =>
        runWait(ctx, { workflowType, version, ...opts }),
      streams),
    );
};
