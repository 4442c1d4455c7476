// aion doctor [--repair]
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { escapeText } from '../render.js';
import type { Register } from './index.js';

export interface DoctorOptions {
  repair?: boolean;
}

/** Prints the report; exit 10 (through process.exitCode) when a problem remains. */
export async function runDoctor(ctx: CommandContext, opts: DoctorOptions): Promise<void> {
  const [{ Store }, { diagnose }, { AionError }] = await Promise.all([
    import('../../store/store.js'),
    import('../../engine/doctor.js'),
    import('../../errors.js'),
  ]);
  const { describeWait } = await import('../../store/holder.js');
  const where = ctx.globals.store ? (await import('../../store/postgres-schema.js')).redactUrl(ctx.globals.store) : ctx.globals.stateDir;
  // On a shared store doctor runs in one exclusive transaction: the fleet waits meanwhile.
  const store = ctx.globals.store ? await Store.openUrl(ctx.globals.store, { create: false }) : await Store.open(ctx.globals.stateDir, {
    create: false,
    // Nothing there is nothing damaged: doctor reports ok (it is not a read of state).
    missingOk: true,
    lockTimeoutMs: ctx.globals.lockTimeoutMs,
    command: `aion doctor${opts.repair ? ' --repair' : ''}`,
    onWait: (holder, position) =>
      ctx.out.notice(describeWait(ctx.globals.stateDir, ctx.globals.lockTimeoutMs, holder, position)),
    // Only a server that answers refuses doctor at once; a holder file left by a killed
    // server is stale, and doctor waits for the lock as every other command does.
    whileWaiting: async (holder) => {
      if (!holder?.socket) return;
      const { serverAnswers } = await import('../../client/remote.js');
      if (await serverAnswers(ctx.globals.stateDir, holder)) {
        throw new AionError('state_busy', `state directory ${ctx.globals.stateDir} is served by aion serve (pid ${holder.pid}); doctor needs it to itself`, {
          details: { state_dir: ctx.globals.stateDir, holder },
          hint: `stop it first (kill -TERM ${holder.pid}), then run aion doctor`,
        });
      }
    },
  });
  let report;
  try {
    report = await store.hold(() => diagnose(store, { repair: Boolean(opts.repair) }), { exclusive: true });
  } finally {
    await store.close();
  }
  const { c } = ctx.out;
  const repaired = new Set(report.repaired);
  ctx.out.result(report, () => {
    if (report.problems.length === 0) return `${c.green('ok')}: no problems found in ${where}`;
    const lines = report.problems.map((p) => {
      const tag = repaired.has(p) ? c.green('repaired') : p.repairable ? c.yellow('repairable') : c.red('not repairable');
      return `${tag}  ${c.bold(p.kind)} ${c.dim(p.key)}\n    ${escapeText(p.message)}`;
    });
    const left = report.problems.length - report.repaired.length;
    const repairable = report.problems.filter((p) => p.repairable && !repaired.has(p)).length;
    lines.push(
      left === 0
        ? `${c.green('ok')}: ${report.repaired.length} problem(s) repaired`
        : `${left} problem(s) remain${repairable > 0 ? `; ${repairable} can be repaired with: aion doctor --repair` : ''}`,
    );
    return lines.join('\n');
  });
  if (!report.ok) process.exitCode = 10;
}

export const registerDoctor: Register = (program: Command, streams) => {
  program
    .command('doctor')
    .summary('check the state directory for damage; with --repair, fix what is safe to fix')
    .description(
      'Check every package row and archive, route pointer, run record, history, active marker, pin and\n' +
        'timer entry of the state directory, and report each problem found (exit 10 when any remains).\n' +
        'With --repair, fix only what can be rebuilt from intact data, in one atomic write: drop routes to\n' +
        'missing versions, rebuild active markers, pins and timer entries from run records and histories,\n' +
        'rebuild a damaged package row from its verifying archive, remove archive files no package row names\n' +
        '(left by an interrupted load or unload). Histories and the archives of loaded versions are never deleted.\n' +
        'Needs the state directory to itself: stop aion serve first.',
    )
    .option('--repair', 'repair what is safe to repair')
    .addHelpText(
      'after',
      `
Examples:
  $ aion doctor
  $ aion doctor --json | jq '.problems[] | select(.repairable)'
  $ aion doctor --repair`,
    )
    .action(
      action(async (ctx, opts: DoctorOptions) => runDoctor(ctx, opts), streams),
    );
};
