// `aion pack [project_dir] [--out <file>]`: build a reproducible .aion archive from a project.
// The package code (fflate, zlib, crypto) is imported inside the action, never at start-up.
import type { Command } from 'commander';
import { action, type CommandContext } from '../context.js';
import { escapeText, shortVersion } from '../render.js';
import type { Streams } from '../output.js';

export interface PackOptions {
  projectDir: string;
  out?: string;
}

export async function runPack({ out }: CommandContext, opts: PackOptions): Promise<void> {
  // The runtime is imported here only: it checks the code (and schemas) as load would, before writing.
  const { packProject } = await import('../../package/index.js');
  const { checkArchive } = await import('../package-check.js');
  const { path, pkg } = await packProject(opts.projectDir, { out: opts.out, check: checkArchive });
  const result = {
    workflow_type: pkg.manifest.workflow_type,
    version: pkg.version,
    output: path,
    modules: pkg.modules.size,
  };
  out.result(result, () => {
    const count = `${pkg.modules.size} module${pkg.modules.size === 1 ? '' : 's'}`;
    const more = pkg.manifest.additional_workflows?.length ? `, ${pkg.manifest.additional_workflows.length + 1} workflow types` : '';
    return `packed ${out.c.bold(result.workflow_type)} ${out.c.cyan(shortVersion(out, pkg.version))} → ${escapeText(path)} (${count}${more})`;
  });
}

export function registerPack(program: Command, streams: Streams): void {
  program
    .command('pack')
    .summary('build a .aion archive from a workflow project (byte-for-byte reproducible)')
    .description(
      'Build a .aion archive from a workflow project (workflow.json, modules/, optional src/). Before writing, ' +
        'compile every module and verify the entry function as aion load would (refusing with exit 6), then read ' +
        'the archive back and validate it. The same project gives the same bytes on any machine.',
    )
    .argument('[project_dir]', 'workflow project directory with workflow.json and modules/', '.')
    .option('--out <file>', "archive path, relative to the current directory (default: workflow.json 'output', else <entry_module>.aion in the project)")
    .addHelpText(
      'after',
      `
The version printed is the content hash of the modules: packing unchanged
modules gives the same version (and the same bytes), whatever else changed
in workflow.json (label included) or src/.

Examples:
  $ aion pack fixtures/hello_v1
  $ aion pack fixtures/hello_v1 --out build/hello.aion
  $ aion pack . --json
  $ aion pack my_flow --out my_flow.aion && aion load my_flow.aion`,
    )
    .action(action(async (ctx, projectDir: string, options: { out?: string }) => runPack(ctx, { projectDir, out: options.out }), streams));
}
