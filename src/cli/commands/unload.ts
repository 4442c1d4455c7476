// aion unload <workflow_type> <version> [--dry-run] [--wait <duration>]
import type { Command } from 'commander';
import { AionError, isAionError } from '../../errors.js';
import type { PinHolder, UnloadOutcome, VersionInfo } from '../../engine/types.js';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { shortVersion } from '../render.js';
import { describeMs, parseDuration, poll } from '../waiting.js';
import type { Register } from './index.js';

export interface UnloadOptions {
  workflowType: string;
  version: string;
  dryRun?: boolean;
  message?: string;
  /** Wait this long for the version to drain (`10m`), retrying the unload. */
  wait?: string;
}

interface Pinned {
  error: AionError;
  state: VersionInfo | null;
}

export async function runUnload(ctx: CommandContext, opts: UnloadOptions): Promise<void> {
  const { workflowType, version } = opts;
  const params = { workflow_type: workflowType, version, dry_run: opts.dryRun, message: opts.message };
  const command = `unload ${workflowType} ${version}`;
  let result: UnloadOutcome;
  if (opts.wait === undefined) {
    result = await withClient(ctx, { write: false, command }, (client) => client.unload(params));
  } else {
    // Each attempt is a whole unload (its checks and its write are one deploy operation), so
    // nothing can pin the version between a look and the unload. Only `version_pinned` waits.
    const timeoutMs = parseDuration(opts.wait, '--wait');
    result = await poll<UnloadOutcome, Pinned>(
      ctx,
      { timeoutMs, intervalMs: 1000, command },
      async (client) => {
        try {
          return { done: await client.unload(params) };
        } catch (error) {
          if (!isAionError(error, 'version_pinned')) throw error;
          const state = (await client.versions({ workflow_type: workflowType }).catch(() => [] as VersionInfo[])).find((v) => v.version === error.details.version) ?? null;
          return { look: { error, state } };
        }
      },
      ({ error, state }) =>
        new AionError('timeout', `timed out after ${describeMs(timeoutMs)} waiting for ${workflowType} ${String(error.details.version).slice(0, 12)} to drain; ${error.message}`, {
          details: {
            workflow_type: workflowType,
            version: error.details.version,
            condition: 'drained',
            state,
            holders: error.details.holders as PinHolder[],
            holders_total: error.details.holders_total,
          },
          hint: error.hint,
        }),
    );
  }
  const { c } = ctx.out;
  ctx.out.result(result, () =>
    result.dry_run
      ? `${result.workflow_type} ${c.cyan(shortVersion(ctx.out, result.version))}: nothing pins it; unload would succeed (dry run)`
      : `${c.green('unloaded')} ${result.workflow_type} ${c.cyan(shortVersion(ctx.out, result.version))}`,
  );
}

export const registerUnload: Register = (program: Command, streams) => {
  program
    .command('unload')
    .summary('remove a version that nothing pins, with its persisted archive')
    .description(
      'Remove a loaded version and its archive from the state directory. Refused, changing ' +
        'nothing, while it is the routed or the ramping version (exit 5) or while anything ' +
        'pins it (exit 4): an in-flight start, a live run, a recoverable run, or a child ' +
        'recorded with it that has not started yet. A package with several workflow types unloads ' +
        'as a whole: every type of that version goes, and any of them routed or pinned refuses it. ' +
        'With --wait, a pinned version is retried ' +
        'until it drains or the time is up (exit 12, with the holders).',
    )
    .argument('<workflow_type>', 'the workflow type')
    .argument('<version>', 'the version: content hash or a unique prefix of ≥ 4 hex characters')
    .option('--dry-run', 'check whether the unload would succeed, changing nothing')
    .option('--wait <duration>', 'wait up to this long for it to drain: 90s, 10m, 1h')
    .option('-m, --message <text>', 'note recorded in the deploy history')
    .addHelpText(
      'after',
      `
Examples:
  $ aion unload hello 3f2a9c1b
  $ aion unload hello 3f2a9c1b --dry-run --json
  $ aion unload hello 3f2a9c1b --wait 10m
  $ aion prune hello     # every drained version a rollout no longer needs`,
    )
    .action(
      action(async (ctx, workflowType: string, version: string, opts: Omit<UnloadOptions, 'workflowType' | 'version'>) =>
        runUnload(ctx, { workflowType, version, ...opts }),
      streams),
    );
};
