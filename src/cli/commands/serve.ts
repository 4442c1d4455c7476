// aion serve [--until-idle] [--max-resident <n>] [--package <archive> ...]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { describeHolder } from '../../store/holder.js';
import { resolveLimitOptions } from '../limits.js';
import type { Register } from './index.js';

export interface ServeOptions {
  untilIdle?: boolean;
  /** Text as given (a whole number from 1 to 10000000). */
  maxResident: string;
  /** Startup packages (`--package`, repeatable): loaded at boot, never persisted. */
  packages?: string[];
}

export async function runServe(ctx: CommandContext, opts: ServeOptions): Promise<void> {
  const maxResident = Number(opts.maxResident);
  if (!Number.isInteger(maxResident) || maxResident < 1 || maxResident > 10_000_000) {
    const { AionError } = await import('../../errors.js');
    throw new AionError('usage', `--max-resident needs a whole number from 1 to 10000000, got '${opts.maxResident}'`);
  }
  // Startup packages are read under the AION_MAX_* limits (else the defaults).
  const limits = resolveLimitOptions({});
  const { serve } = await import('../../server/serve.js');
  let abandoned = false;
  const summary = await serve({
    stateDir: ctx.globals.stateDir,
    store: ctx.globals.store,
    lockTimeoutMs: ctx.globals.lockTimeoutMs,
    untilIdle: Boolean(opts.untilIdle),
    maxResident,
    packages: opts.packages ?? [],
    limits,
    onWarning: (m) => ctx.out.warn(m),
    onInfo: (m) => ctx.out.info(m),
    onWait: (holder) =>
      ctx.out.notice(`waiting up to ${Math.round(ctx.globals.lockTimeoutMs / 1000)}s for state directory ${ctx.globals.stateDir}, held by ${describeHolder(holder)}`),
    // The readiness line, always (scripts and supervisors wait for it).
    onListening: (socketPath) => ctx.out.notice(`listening on ${socketPath}`),
    onAbandoned: () => (abandoned = true),
  });
  ctx.out.result(summary, () => `stopped: ${summary.recovered} run(s) recovered, ${summary.timers_fired} timer(s) fired, ${summary.still_running} still running`);
  // Work abandoned past the shutdown grace period would keep the process alive: exit now
  // (stdout and stderr are written synchronously to files, pipes and terminals).
  if (abandoned) process.exit(0);
}

export const registerServe: Register = (program: Command, streams) => {
  program
    .command('serve')
    .summary('run the engine in the foreground: recover runs, fire timers, execute runs')
    .description(
      'Run the engine until SIGINT or SIGTERM: restore packages and routes, recover every active run on ' +
        'its recorded version, fire durable timers and execute runs. While it runs, every other aion command ' +
        'on the state directory is carried out by it over an owner-only control socket (its path is printed ' +
        "as 'listening on <path>' on stderr once it is ready). With --until-idle, exit once no run can " +
        'progress without a new signal. With --package, archives baked into an image are loaded at boot ' +
        'without being persisted, and route their types while this server runs. After SIGINT/SIGTERM, ' +
        'while runs finish their step, reads (versions, runs, show, status, history) are still answered; ' +
        'mutations get shutting_down (exit 9).',
    )
    .option('--until-idle', 'exit once no run can progress without a new signal')
    .option('--max-resident <n>', 'runs whose workflow code stays in memory between steps (least recently used leave first)', '5000')
    .option('--package <archive>', 'load this archive at boot, in memory only, routed while this server runs (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .addHelpText(
      'after',
      `
Examples:
  $ aion serve
  $ aion serve --until-idle --json
  $ aion serve --max-resident 20000
  $ aion serve --package /app/order.aion --package /app/billing.aion`,
    )
    .action(action(async (ctx, opts: { untilIdle?: boolean; maxResident: string; package?: string[] }) => runServe(ctx, { untilIdle: opts.untilIdle, maxResident: opts.maxResident, packages: opts.package }), streams));
};
