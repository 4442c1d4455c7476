// `aion inspect <archive>`: validate an archive completely without loading it, and describe it.
// The package code is imported inside the action, never at start-up.
import type { Command } from 'commander';
import { action } from '../context.js';
import type { Streams } from '../output.js';

export function registerInspect(program: Command, streams: Streams): void {
  program
    .command('inspect')
    .summary('validate a .aion archive without loading it and show its manifest')
    .description('Validate a .aion archive completely without loading it, and show its manifest, version and modules.')
    .argument('<archive>', 'path of the .aion archive')
    .addHelpText(
      'after',
      `
Runs every check 'aion load' runs on the archive itself (zip structure,
limits, manifest, module names, UTF-8, content hash, every module
compiled, the entry module evaluated and its entry function and
activities found); exits 6 (invalid_package) naming the problem.

Examples:
  $ aion inspect hello.aion
  $ aion inspect hello.aion --json
  $ aion inspect hello.aion --json | jq -r .version`,
    )
    .action(
      action<[string]>(async ({ out }, archive) => {
        // The runtime is imported here only: the code is checked as load would check it.
        const { readPackageFile } = await import('../../package/index.js');
        const { checkPackageCode } = await import('../../runtime/check.js');
        const pkg = await readPackageFile(archive);
        await checkPackageCode(pkg.version, pkg.modules, pkg.manifest);
        const m = pkg.manifest;
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
        };
        out.result(result, () => {
          const c = out.c;
          const rows: [string, string][] = [
            ['workflow_type', c.bold(m.workflow_type)],
            ['version', c.cyan(pkg.version)],
            ['label', m.label === undefined ? c.dim('none') : m.label],
            ['entry', `${m.entry_module}.${m.entry_function}`],
            ['timeout', `${m.timeout_seconds}s`],
            ['activities', m.activities.length > 0 ? m.activities.join(', ') : c.dim('none')],
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
          return lines.join('\n');
        });
      }, streams),
    );
}
