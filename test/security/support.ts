// Shared fixtures of the security suite: a state directory with a package loaded, a digest of
// its database (to prove an attack changed nothing), and a project to attack `pack` with.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, FIXTURES, tempDir } from '../helpers/cli.js';
import { dumpDigest, dumpState } from '../faults/support.js';

export { aion, aionAsync, tempDir, BIN, ROOT, FIXTURES } from '../helpers/cli.js';

/** A digest of every key and value in the state directory's database. */
export async function stateDigest(stateDir: string): Promise<string> {
  return dumpDigest(await dumpState(stateDir));
}

/** A fresh state directory with `fixtures/<fixture>` packed and loaded. */
export function loadedState(fixture = 'hello_v1'): { dir: string; stateDir: string; archive: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir('aion-security-');
  const stateDir = path.join(dir, 'state');
  const archive = path.join(dir, `${fixture}.aion`);
  const packed = aion(['pack', path.join(FIXTURES, fixture), '--out', archive, '--json']);
  if (packed.code !== 0) throw new Error(`pack failed: ${packed.stderr}`);
  const loaded = aion(['--state-dir', stateDir, 'load', archive, '--json']);
  if (loaded.code !== 0) throw new Error(`load failed: ${loaded.stderr}`);
  return { dir, stateDir, archive, cleanup };
}

/** A copy of a fixture project under `dir`, optionally with workflow code of our own. */
export function project(dir: string, fixture = 'hello_v1', name = 'proj'): string {
  const to = path.join(dir, name);
  cpSync(path.join(FIXTURES, fixture), to, { recursive: true });
  return to;
}

/** A one-module project `dir/<name>` whose entry module `type` has the given source. */
export function workflowProject(dir: string, type: string, source: string, activities: string[] = []): string {
  const to = path.join(dir, type);
  mkdirSync(path.join(to, 'modules'), { recursive: true });
  writeFileSync(path.join(to, 'workflow.json'), JSON.stringify({ entry_module: type, entry_function: 'run', timeout_seconds: 30, activities }));
  writeFileSync(path.join(to, 'modules', `${type}.js`), source);
  return to;
}
