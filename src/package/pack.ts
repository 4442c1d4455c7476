// Building a .aion archive from a workflow project: `aion pack`.
//
// Layout, always in this order: manifest.json; modules/<path>.js in ascending byte order of
// logical name; src/<path> in ascending byte order of path. With the zip writer's fixed
// timestamps and attributes the archive is byte-for-byte reproducible.
//
// Failure behaviour: the project is read and the archive built and validated in memory first,
// so an invalid project writes nothing. The file is written atomically (temporary file in the
// same directory, fsync, rename): a failed write leaves any previous archive at that path
// untouched. After the rename the file is read back and validated again with readPackage.
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { makeDirs } from '../dirs.js';
import { AionError } from '../errors.js';
import { contentHash } from './hash.js';
import { fieldError, serializeManifest } from './manifest.js';
import { moduleEntryPath } from './names.js';
import { readProject, WORKFLOW_FILE, type WorkflowProject } from './project.js';
import { MANIFEST_ENTRY, readPackage } from './read.js';
import { FORMAT_VERSION, type AionPackage, type Manifest } from './types.js';
import { writeZip, type ZipInput } from './zip.js';

export interface PackOptions {
  /** Archive path, relative to `cwd`; overrides workflow.json `output`. */
  out?: string;
  /** Directory `out` is relative to (default: process.cwd()). */
  cwd?: string;
  /**
   * Runs on the built package before anything is written; a throw refuses the pack (the CLI
   * passes the runtime's code check, which this layer does not know).
   */
  check?: (pkg: AionPackage) => Promise<void>;
}

export interface PackResult {
  /** Absolute path of the written archive. */
  path: string;
  pkg: AionPackage;
}

/** The manifest of a project: version is the content hash of its modules. */
export function projectManifest(project: WorkflowProject): Manifest {
  const { config } = project;
  return {
    format_version: FORMAT_VERSION,
    workflow_type: config.entry_module,
    entry_module: config.entry_module,
    entry_function: config.entry_function,
    timeout_seconds: config.timeout_seconds,
    activities: [...config.activities],
    version: contentHash(project.modules),
    modules: [...project.modules].map(([name, bytes]) => ({ name, bytes: bytes.length })),
    ...(config.label === undefined ? {} : { label: config.label }),
    ...(config.input_schema === undefined ? {} : { input_schema: config.input_schema }),
    ...(config.output_schema === undefined ? {} : { output_schema: config.output_schema }),
    ...(config.additional_workflows === undefined ? {} : { additional_workflows: config.additional_workflows }),
  };
}

/** The archive bytes of a project (deterministic; not yet validated). */
export function buildArchive(project: WorkflowProject): Uint8Array {
  const entries: ZipInput[] = [{ name: MANIFEST_ENTRY, data: new TextEncoder().encode(serializeManifest(projectManifest(project))) }];
  for (const [name, bytes] of project.modules) entries.push({ name: moduleEntryPath(name), data: bytes });
  for (const [relative, bytes] of project.sources) entries.push({ name: `src/${relative}`, data: bytes });
  return writeZip(entries);
}

/**
 * Where the archive goes: --out (relative to cwd), else workflow.json output, else
 * <entry_module>.aion in the project. Resolved on real paths (the deepest existing ancestor
 * through realpath, plus the directories still to be created), so a symlinked directory cannot
 * carry a workflow.json `output` out of the project (`invalid_package`, naming the field) and
 * no output, not even --out, lands in the project's modules/ or src/ (`usage`). Returns the
 * path as named (what pack reports) and the real path (where it writes).
 */
export async function resolveOutputPath(project: WorkflowProject, options: PackOptions = {}): Promise<{ path: string; real: string }> {
  const fromConfig = options.out === undefined;
  const lexical = fromConfig
    ? path.resolve(project.dir, project.config.output ?? `${project.config.entry_module}.aion`)
    : path.resolve(options.cwd ?? process.cwd(), options.out!);
  const projectDir = await realDir(project.dir);
  const target = path.join(await realDir(path.dirname(lexical)), path.basename(lexical));
  const inside = (dir: string) => {
    const relative = path.relative(dir, target);
    return relative !== '' && !relative.startsWith('..' + path.sep) && relative !== '..' && !path.isAbsolute(relative);
  };
  if (fromConfig && !inside(projectDir)) {
    throw fieldError(
      path.join(project.dir, WORKFLOW_FILE),
      'output',
      `resolves to ${target}, outside the project directory ${projectDir} (through a symbolic link); use --out to write elsewhere`,
    );
  }
  // Writing into modules/ or src/ would change what the next pack collects.
  for (const sub of ['modules', 'src']) {
    const dir = path.join(projectDir, sub);
    if (target === dir || inside(dir)) {
      throw new AionError('usage', `output ${target} must not be inside the project's ${sub}/ directory`);
    }
  }
  return { path: lexical, real: target };
}

/** The real path of `dir`: realpath of its deepest existing ancestor, plus the rest as named. */
async function realDir(dir: string): Promise<string> {
  const rest: string[] = [];
  let existing = dir;
  for (;;) {
    try {
      return path.join(await realpath(existing), ...rest.reverse());
    } catch (error) {
      const parent = path.dirname(existing);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === existing) {
        throw new AionError('usage', `cannot resolve output directory ${dir}: ${(error as Error).message}`);
      }
      rest.push(path.basename(existing));
      existing = parent;
    }
  }
}

/** Reads the project, builds and validates the archive, writes it atomically, re-validates it. */
export async function packProject(projectDir: string, options: PackOptions = {}): Promise<PackResult> {
  const project = await readProject(projectDir);
  const bytes = buildArchive(project);
  const built = readPackage(bytes); // an archive no reader would accept is never written
  await options.check?.(built); // nor one whose code load would refuse
  const { path: named, real: target } = await resolveOutputPath(project, options);

  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new AionError('usage', `output ${target} is a directory`);
  await writeAtomically(target, bytes);

  let written: Uint8Array;
  try {
    written = await readFile(target);
  } catch (error) {
    throw new AionError('internal', `cannot read back ${target}: ${(error as Error).message}`);
  }
  if (Buffer.compare(written, bytes) !== 0) throw new AionError('internal', `archive ${target} changed while it was being written`);
  const pkg = readPackage(written);
  return { path: named, pkg };
}

async function writeAtomically(target: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    makeDirs(dir);
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new AionError('usage', `cannot write archive ${target}: ${(error as Error).message}`);
  }
}
