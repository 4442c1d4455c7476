// aion migrate --from <state-dir|postgres://…> --to <postgres://…|state-dir>
import type { Command } from 'commander';
import { action } from '../context.js';
import type { Register } from './index.js';

export const registerMigrate: Register = (program: Command, streams) => {
  program
    .command('migrate')
    .summary('copy a whole store (catalog, routes, history, runs) between a state directory and PostgreSQL')
    .description(
      'Copy every record of one store into another that holds nothing yet: a state directory into a PostgreSQL ' +
        'store (postgres://…), or back. Packages, archives, routes, ramps, deploy history, runs, histories, pins and ' +
        'timers are copied as they are; run leases are not (the first worker claims the active runs). Stop every ' +
        'aion using the source first. The target is checked by aion doctor afterwards; a failure leaves the source ' +
        'untouched (a PostgreSQL target gets nothing, a state directory target is removed by hand before retrying).',
    )
    .requiredOption('--from <store>', 'state directory or postgres:// URL to copy from')
    .requiredOption('--to <store>', 'state directory or postgres:// URL to copy into (must be empty)')
    .addHelpText('after', `\nExamples:\n  $ aion migrate --from .aion-state --to postgres://postgres@127.0.0.1:5432/aion\n  $ aion migrate --from postgres://db/aion --to ./restored-state`)
    .action(
      action(async (ctx, opts: { from: string; to: string }) => {
        const { migrateStore } = await import('../../store/migrate.js');
        const report = await migrateStore(opts.from, opts.to, { lockTimeoutMs: ctx.globals.lockTimeoutMs });
        ctx.out.result(report, () => `copied ${report.copied} record(s) from ${report.from} to ${report.to}; doctor: ${report.doctor.ok ? 'ok' : `${report.doctor.problems.length} problem(s)`}`);
        if (!report.doctor.ok) process.exitCode = 10;
      }, streams),
    );
};
