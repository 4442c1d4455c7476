// `aion inspect <archive> [--max-archive-bytes <n>] [--max-inflated-bytes <n>] [--max-entries <n>]`:
// validate an archive completely without loading it, and describe it — every workflow type it
// exports, with its schemas. The package code is imported inside the run, never at start-up.
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { limitOptionHelp, resolveLimitOptions, type LimitOptions } from '../limits.js';
import type { Streams } from '../output.js';

export interface InspectOptions extends LimitOptions {
  archive: string;
}

export async function runInspect({ out }: CommandContext, opts: InspectOptions): Promise<void> {
  const limits = resolveLimitOptions(opts);
  // The runtime is imported here only: the code is checked as load would check it.
  const { readPackageFile, workflowSpecs } = await import('../../package/index.js');
  const { checkArchive } = await import('../package-check.js');
  const pkg = await readPackageFile(opts.archive, limits);
  await checkArchive(pkg);
  const m = pkg.manifest;
  const types = workflowSpecs(m).map((s) => ({
    workflow_type: s.workflow_type,
    entry_module: s.entry_module,
    entry_function: s.entry_function,
    timeout_seconds: s.timeout_seconds,
    activities: s.activities,
    internal: s.internal,
    input_schema: s.input_schema ?? null,
    output_schema: s.output_schema ?? null,
  }));
  const result = {
    workflow_type: m.workflow_type,
    entry_module: m.entry_module,
    entry_function: m.entry_function,
    version: pkg.version,
    manifest_digest: pkg.manifestDigest,
    timeout_seconds: m.timeout_seconds,
    activities: m.activities,
    modules: m.modules.map(({ name, bytes }) => ({ name, bytes })),
    format_version: m.format_version,
    label: m.label ?? null,
    input_schema: m.input_schema ?? null,
    output_schema: m.output_schema ?? null,
    workflow_types: types,
  };
  out.result(result, () => {
    const c = out.c;
    const schema = (s: unknown) => (s === null ? c.dim('none') : JSON.stringify(s));
    const rows: [string, string][] = [
      ['workflow_type', c.bold(m.workflow_type)],
      ['version', c.cyan(pkg.version)],
      ['label', m.label === undefined ? c.dim('none') : m.label],
      ['entry', `${m.entry_module}.${m.entry_function}`],
      ['timeout', `${m.timeout_seconds}s`],
      ['activities', m.activities.length > 0 ? m.activities.join(', ') : c.dim('none')],
      ['input_schema', schema(result.input_schema)],
      ['output_schema', schema(result.output_schema)],
      ['manifest_digest', pkg.manifestDigest],
      ['format_version', String(m.format_version)],
      ['sources', pkg.sources.size > 0 ? `${pkg.sources.size} file${pkg.sources.size === 1 ? '' : 's'} under src/` : c.dim('none')],
      ['modules', String(m.modules.length)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
    const nameWidth = Math.max(...m.modules.map((x) => x.name.length));
    const sizeWidth = Math.max(...m.modules.map((x) => String(x.bytes).length));
    for (const { name, bytes } of m.modules) {
      lines.push(`  ${name.padEnd(nameWidth)}  ${String(bytes).padStart(sizeWidth)} bytes`);
    }
    if (types.length > 1) {
      lines.push(`more workflow types (${types.length - 1}):`);
      for (const t of types.slice(1)) {
        lines.push(`  ${c.bold(t.workflow_type)}${t.internal ? ' (internal)' : ''}  ${t.entry_module}.${t.entry_function}  timeout ${t.timeout_seconds}s  activities ${t.activities.length > 0 ? t.activities.join(', ') : c.dim('none')}`);
        lines.push(`    input_schema ${schema(t.input_schema)}  output_schema ${schema(t.output_schema)}`);
      }
    }
    return lines.join('\n');
  });
}

export function registerInspect(program: Command, streams: Streams): void {
  const command = program
    .command('inspect')
    .summary('validate a .aion archive without loading it and show its manifest')
    .description('Validate a .aion archive completely without loading it, and show its manifest, version, modules, and every workflow type it exports with its schemas.')
    .argument('<archive>', 'path of the .aion archive');
  for (const [flag, help] of limitOptionHelp()) command.option(flag, help);
  command
    .addHelpText(
      'after',
      `
Runs every check 'aion load' runs on the archive itself (zip structure,
limits, manifest, module names, UTF-8, content hash, every module
compiled, every entry module evaluated and its entry function and
activities found, every schema compiled); exits 6 (invalid_package)
naming the problem.

Examples:
  $ aion inspect hello.aion
  $ aion inspect hello.aion --json
  $ aion inspect hello.aion --json | jq -r .version
  $ aion inspect big.aion --max-archive-bytes 1G`,
    )
    .action(action(async (ctx, archive: string, opts: Omit<InspectOptions, 'archive'>) => runInspect(ctx, { archive, ...opts }), streams));
}
