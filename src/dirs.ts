// Creating a directory and its missing parents without Node's recursive mkdir, which retries
// forever where mkdir fails ENOENT under a parent that exists (anywhere under /proc, say).
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates `dir` and its missing parents (with `mode`), one level at a time, each tried once.
 * Throws the first failure (an errno error naming the path; ENOTDIR for an ancestor that is
 * not a directory) and leaves the levels it created. A directory that already exists is fine.
 */
export function makeDirs(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = statSync(d, { throwIfNoEntry: false });
    if (st?.isDirectory()) break;
    if (st) throw Object.assign(new Error(`ENOTDIR: ${d} exists and is not a directory`), { code: 'ENOTDIR', path: d });
    if (d === path.dirname(d)) throw Object.assign(new Error(`ENOENT: no such file or directory, ${d}`), { code: 'ENOENT', path: d });
    missing.push(d);
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode });
    } catch (error) {
      // EEXIST: another process created it meanwhile; a directory is all we need.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw error;
    }
  }
}
