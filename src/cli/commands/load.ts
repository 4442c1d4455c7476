// aion load <archive> [--dry-run] [--no-route] [--message <text>] [--max-archive-bytes <n>] [--max-inflated-bytes <n>] [--max-entries <n>]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { withClient } from '../client.js';
import { limitOptionHelp, resolveLimitOptions, type LimitOptions } from '../limits.js';
import { shortVersion } from '../render.js';
import type { Register } from './index.js';

/** Lines the load view draws: its header and one per load step (LOAD_STEPS). */
export const LOAD_VIEW_LINES = 8;

export interface LoadOptions extends LimitOptions {
  archive: string;
  dryRun?: boolean;
  /** False: `--no-route`. */
  route?: boolean;
  message?: string;
}

export async function runLoad(ctx: CommandContext, opts: LoadOptions): Promise<void> {
  const { archive } = opts;
  // Checked before anything is opened: a bad limit is a usage error.
  const limits = resolveLimitOptions(opts);
  const params = {
    archive,
    dry_run: opts.dryRun,
    no_route: opts.route === false ? true : undefined,
    message: opts.message,
    max_archive_bytes: limits.maxArchiveBytes,
    max_inflated_bytes: limits.maxInflatedBytes,
    max_entries: limits.maxEntries,
  };
  const result = await withClient(ctx, { write: !opts.dryRun, command: `load ${archive}` }, async (client) => {
    // ink clears the whole screen, scrollback included, when a frame is as tall as the
    // terminal: on one too small for the view (or of unknown height), draw none.
    if (!ctx.out.interactive || !(Number(ctx.out.streams.stderr.rows) > LOAD_VIEW_LINES)) return client.load(params);
    // On a terminal: the steps, live, on stderr. ink and react are imported only here.
    const { startLoadView } = await import('../views/load.js');
    const server = (client as { server?: { pid: number } }).server;
    const view = startLoadView(ctx.out.streams, { archive, remote: server ? `aion serve (pid ${server.pid})` : undefined, color: ctx.out.color });
    try {
      const outcome = await client.load(params, { onProgress: view.store.step });
      view.store.finish(outcome);
      return outcome;
    } catch (error) {
      view.store.fail();
      throw error;
    } finally {
      await view.close();
    }
  });
  const { c } = ctx.out;
  const v = shortVersion(ctx.out, result.version);
  const prev = result.previous ? shortVersion(ctx.out, result.previous) : null;
  ctx.out.result(
    {
      workflow_type: result.workflow_type,
      version: result.version,
      workflow_types: result.workflow_types,
      label: result.label,
      deployed_entry_module: result.deployed_entry_module,
      entry_function: result.entry_function,
      freshly_loaded: result.freshly_loaded,
      route_changed: result.route_changed,
      routed: result.routed,
      previous: result.previous,
      ...(result.dry_run ? { dry_run: true } : {}),
    },
    () => {
      const would = result.dry_run ? 'would ' : '';
      const lines = [
        `${c.bold(result.workflow_type)} ${c.cyan(v)}${result.label ? ` ${c.dim(`“${result.label}”`)}` : ''}: ${result.dry_run ? 'valid, ' : ''}${
          result.freshly_loaded ? `${would}load new version` : `already loaded, ${would}register nothing`
        }`,
        !result.routed
          ? `not routed (--no-route): new starts still go to ${prev ?? 'nothing'}; next: aion ramp ${result.workflow_type} ${result.version.slice(0, 12)} <percent>, or aion route`
          : result.route_changed
          ? `${c.green('route')} ${result.workflow_type} → ${v}${prev ? ` ${c.dim(`(was ${prev})`)}` : ''}${result.dry_run ? ' (not applied: dry run)' : ''}`
          : `route unchanged: ${result.workflow_type} → ${v}`,
      ];
      if (result.workflow_types.length > 1) lines.push(`package types: ${result.workflow_types.join(', ')} (one version; internal types are not routed)`);
      return lines.join('\n');
    },
  );
}

export const registerLoad: Register = (program: Command, streams) => {
  const command = program
    .command('load')
    .summary('load a package and route new runs of its workflow type to it')
    .description(
      'Validate an .aion archive, register its modules, verify its entry function, persist it and atomically ' +
        'route new starts of its workflow type to it. Runs already started keep their version. ' +
        'Re-loading a loaded version registers nothing but re-points the route at it (a re-deploy). ' +
        'A package with several workflow types (additional_workflows) loads as one unit: every type ' +
        'registered, every non-internal type routed, in one deploy operation.',
    )
    .argument('<archive>', 'path of the .aion archive (see aion pack)')
    .option('--dry-run', 'validate and report what would happen, changing nothing')
    .option('--no-route', 'register and persist only; route later (aion route, aion ramp)')
    .option('-m, --message <text>', 'note recorded in the deploy history');
  for (const [flag, help] of limitOptionHelp()) command.option(flag, help);
  command
    .addHelpText(
      'after',
      `
Examples:
  $ aion load hello.aion
  $ aion load hello.aion --dry-run --json
  $ aion load approval-v2.aion --no-route   # stage; then aion ramp or route
  $ aion load build/order.aion -m "hotfix: retry charge"
  $ aion load big.aion --max-archive-bytes 1G --max-inflated-bytes 2G`,
    )
    .action(action(async (ctx, archive: string, opts: Omit<LoadOptions, 'archive'>) => runLoad(ctx, { archive, ...opts }), streams));
};
