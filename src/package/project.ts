// Reading a workflow project directory (CLI contract, "Workflow project format"):
//   workflow.json        entry_module, entry_function, timeout_seconds, activities, [output], [label]
//   modules/**/*.js      the modules; `modules/a/b.js` is logical name `a@b`
//   src/**               optional, shipped under src/, never part of the version
// Only reads. A missing or unreadable project directory or workflow.json is `usage`; invalid
// content (bad JSON or field, stray file or symlink under modules/, ...) is `invalid_package`,
// and so is a workflow.json, module or source file that is not a regular file (a symlink, a
// FIFO, a directory): every file is opened without following a final symlink and without
// blocking, and checked on the open handle, so nothing is read from outside the project.
// Every message names the file and, where there is one, the field.
import { constants } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AionError } from '../errors.js';
import { compareUtf8 } from './hash.js';
import {
  checkActivitiesField,
  checkIdentifierField,
  checkLogicalNameField,
  checkObjectKeys,
  checkLabelField,
  checkTimeoutField,
  checkExtraFields,
  fieldError,
} from './manifest.js';
import type { AdditionalWorkflow, JsonSchema } from './types.js';
import { archivePathProblem, moduleNameFromRelativePath, moduleRelativePath } from './names.js';

export const WORKFLOW_FILE = 'workflow.json';
const REQUIRED_KEYS = ['entry_module', 'entry_function', 'timeout_seconds', 'activities'] as const;
const OPTIONAL_KEYS = ['output', 'label', 'input_schema', 'output_schema', 'additional_workflows'] as const;

/** workflow.json, validated. */
export interface WorkflowConfig {
  entry_module: string;
  entry_function: string;
  timeout_seconds: number;
  activities: string[];
  /** Archive path relative to the project directory (never outside it). */
  output?: string;
  /** Author label shown by inspect, load, versions and status; not part of the version. */
  label?: string;
  /** JSON Schemas (draft 2020-12) of the run's input and output. */
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
  /** More workflow types this package exports (contract: "Packages with several workflow types"). */
  additional_workflows?: AdditionalWorkflow[];
}

export interface WorkflowProject {
  /** Absolute project directory. */
  dir: string;
  config: WorkflowConfig;
  /** Module bytes by logical name, ascending byte order of name. */
  modules: Map<string, Uint8Array>;
  /** Files under src/ by path relative to src/ ('/'-separated), ascending byte order. */
  sources: Map<string, Uint8Array>;
}

function invalid(message: string): AionError {
  return new AionError('invalid_package', message);
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

/** Reads and validates the project at `projectDir` (relative paths against the cwd). */
export async function readProject(projectDir: string): Promise<WorkflowProject> {
  const dir = path.resolve(projectDir);
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new AionError('usage', `no such project directory: ${projectDir}`);
    throw new AionError('usage', `cannot read project directory ${projectDir}: ${(error as Error).message}`);
  }
  if (!info.isDirectory()) throw new AionError('usage', `not a project directory: ${projectDir} (expected a directory with ${WORKFLOW_FILE})`);

  const configPath = path.join(projectDir, WORKFLOW_FILE);
  const configBytes = await readRegularFile(path.join(dir, WORKFLOW_FILE), configPath, () => {
    throw new AionError('usage', `no ${WORKFLOW_FILE} in project directory ${projectDir}`, {
      hint: `a workflow project needs ${WORKFLOW_FILE} and modules/<entry_module>.js`,
    });
  });
  const config = parseWorkflowConfig(Buffer.from(configBytes).toString('utf8'), configPath);

  const modules = new Map<string, Uint8Array>();
  const modulesDir = path.join(dir, 'modules');
  const moduleFiles = await walk(modulesDir, 'modules', true);
  if (moduleFiles === undefined) throw invalid(`${path.join(projectDir, 'modules')}: missing modules/ directory`);
  for (const relative of moduleFiles) {
    const name = moduleNameFromRelativePath(relative, path.join(projectDir, 'modules', relative));
    modules.set(name, await readRegularFile(path.join(modulesDir, relative), path.join(projectDir, 'modules', relative)));
  }
  if (!modules.has(config.entry_module)) {
    throw fieldError(configPath, 'entry_module', `names ${JSON.stringify(config.entry_module)}, but modules/${moduleRelativePath(config.entry_module)} does not exist`);
  }
  (config.additional_workflows ?? []).forEach((w, i) => {
    if (!modules.has(w.entry_module)) {
      throw fieldError(configPath, `additional_workflows[${i}].entry_module`, `names ${JSON.stringify(w.entry_module)}, but modules/${moduleRelativePath(w.entry_module)} does not exist`);
    }
  });

  const sources = new Map<string, Uint8Array>();
  const sourcesDir = path.join(dir, 'src');
  for (const relative of (await walk(sourcesDir, 'src', false)) ?? []) {
    const problem = archivePathProblem(relative);
    if (problem !== null) throw invalid(`${path.join(projectDir, 'src', relative)}: path ${problem}`);
    sources.set(relative, await readRegularFile(path.join(sourcesDir, relative), path.join(projectDir, 'src', relative)));
  }

  const sortedModules = new Map([...modules].sort(([a], [b]) => compareUtf8(a, b)));
  const sortedSources = new Map([...sources].sort(([a], [b]) => compareUtf8(a, b)));
  return { dir, config, modules: sortedModules, sources: sortedSources };
}

/**
 * The bytes of a project file that must be a regular file: a symlink (O_NOFOLLOW), a FIFO or
 * device (opened O_NONBLOCK, so it cannot hang us) or a directory is `invalid_package` naming
 * `shown`. A missing file calls `missing` (default: `usage`); other read errors are `usage`.
 */
async function readRegularFile(absolute: string, shown: string, missing?: () => never): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(absolute, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ELOOP') throw invalid(`${shown}: symbolic links are not allowed in a workflow project`);
    if (code === 'ENOENT' && missing) missing();
    throw new AionError('usage', `cannot read ${shown}: ${(error as Error).message}`);
  }
  try {
    if (!(await handle.stat()).isFile()) throw invalid(`${shown}: not a regular file`);
    return await handle.readFile();
  } catch (error) {
    if (error instanceof AionError) throw error;
    throw new AionError('usage', `cannot read ${shown}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

/** Validates workflow.json text; `file` names it in messages. */
export function parseWorkflowConfig(text: string, file: string): WorkflowConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(`${file}: not valid JSON (${(error as Error).message})`);
  }
  const record = checkObjectKeys(value, file, REQUIRED_KEYS, OPTIONAL_KEYS);
  const config: WorkflowConfig = {
    entry_module: checkLogicalNameField(record.entry_module, file, 'entry_module'),
    entry_function: checkIdentifierField(record.entry_function, file, 'entry_function'),
    timeout_seconds: checkTimeoutField(record.timeout_seconds, file),
    activities: checkActivitiesField(record.activities, file),
  };
  if (record.output !== undefined) {
    const output = record.output;
    if (typeof output !== 'string' || output.length === 0) throw fieldError(file, 'output', `must be a non-empty path, got ${JSON.stringify(output)}`);
    if (path.isAbsolute(output)) throw fieldError(file, 'output', `must be relative to the project directory, got ${JSON.stringify(output)}`);
    const normalized = path.normalize(output);
    if (normalized === '.' || normalized === '..' || normalized.startsWith('..' + path.sep)) {
      throw fieldError(file, 'output', `must stay inside the project directory, got ${JSON.stringify(output)}`);
    }
    config.output = output;
  }
  if (record.label !== undefined) config.label = checkLabelField(record.label, file);
  Object.assign(config, checkExtraFields(record, file, config.entry_module));
  return config;
}

/**
 * Lists regular files under `root` recursively as '/'-separated relative paths, or undefined
 * when `root` does not exist. Symbolic links and special files are invalid_package naming the
 * path; with `jsOnly`, so is any file not ending in `.js`.
 */
async function walk(root: string, label: string, jsOnly: boolean): Promise<string[] | undefined> {
  const out: string[] = [];
  const visit = async (relative: string): Promise<void> => {
    const absolute = relative === '' ? root : path.join(root, relative);
    let entries;
    try {
      entries = await readdir(absolute, { withFileTypes: true });
    } catch (error) {
      throw new AionError('usage', `cannot read ${label}/${relative}: ${(error as Error).message}`);
    }
    entries.sort((a, b) => compareUtf8(a.name, b.name));
    for (const entry of entries) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const shown = `${label}/${child}`;
      if (entry.isSymbolicLink()) throw invalid(`${shown}: symbolic links are not allowed in a workflow project`);
      if (entry.isDirectory()) {
        await visit(child);
      } else if (entry.isFile()) {
        if (jsOnly && !entry.name.endsWith('.js')) throw invalid(`${shown}: only .js module files are allowed under modules/`);
        out.push(child);
      } else {
        throw invalid(`${shown}: not a regular file`);
      }
    }
  };
  let rootInfo;
  try {
    rootInfo = await lstat(root);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new AionError('usage', `cannot read ${label}/: ${(error as Error).message}`);
  }
  if (rootInfo.isSymbolicLink()) throw invalid(`${label}: symbolic links are not allowed in a workflow project`);
  if (!rootInfo.isDirectory()) throw invalid(`${label}: must be a directory`);
  await visit('');
  return out;
}
