// Building packages for tests: fixtures packed in-process, and variants of a fixture that differ
// by one module byte (a new version) or only by manifest fields (same version).
import { cpSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { packProject } from '../../src/package/index.js';
import { FIXTURES } from './cli.js';

export interface Packed {
  path: string;
  version: string;
  type: string;
}

/** Packs `fixtures/<name>` into `dir/<out>`. */
export async function packFixture(name: string, dir: string, out = `${name}.aion`): Promise<Packed> {
  const { path: file, pkg } = await packProject(path.join(FIXTURES, name), { out: path.join(dir, out) });
  return { path: file, version: pkg.version, type: pkg.manifest.workflow_type };
}

/**
 * Copies `fixtures/<name>` into `dir/<tag>/`, lets `edit` change it (by default: a comment
 * appended to the entry module, i.e. a new version), and packs it.
 */
export async function packVariant(
  name: string,
  dir: string,
  tag: string,
  edit?: (projectDir: string) => void,
): Promise<Packed> {
  const projectDir = path.join(dir, tag);
  cpSync(path.join(FIXTURES, name), projectDir, { recursive: true });
  if (edit) edit(projectDir);
  else {
    const config = JSON.parse(readFileSync(path.join(projectDir, 'workflow.json'), 'utf8')) as { entry_module: string };
    appendFileSync(path.join(projectDir, 'modules', `${config.entry_module}.js`), `\n// variant ${tag}\n`);
  }
  const { path: file, pkg } = await packProject(projectDir, { out: path.join(dir, `${tag}.aion`) });
  return { path: file, version: pkg.version, type: pkg.manifest.workflow_type };
}

/** Edits workflow.json of a copied project. */
export function editConfig(projectDir: string, patch: Record<string, unknown>): void {
  const file = path.join(projectDir, 'workflow.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...patch }, null, 2));
}

/** Where a state directory keeps the archive file of a loaded version. */
export function storedArchive(stateDir: string, version: string): string {
  return path.join(stateDir, 'archives', `${version}.aion`);
}
