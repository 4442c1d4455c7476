// The holder file: who holds a state directory (pid, command, since). LevelDB's own lock is
// the authority; this advisory file only lets a waiting process say whom it waits for.
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface HolderInfo {
  pid: number;
  command: string;
  since: string;
  /** Control socket of `aion serve`, when the holder is a server. */
  socket?: string;
}

export function holderPath(stateDir: string): string {
  return path.join(stateDir, 'holder.json');
}

export function readHolder(stateDir: string): HolderInfo | undefined {
  try {
    return JSON.parse(readFileSync(holderPath(stateDir), 'utf8')) as HolderInfo;
  } catch {
    return undefined;
  }
}

export function describeHolder(holder: HolderInfo | undefined): string {
  if (!holder) return 'another process';
  return `pid ${holder.pid} (${holder.command}) since ${holder.since}`;
}

/** The notice of a command that waits for the state directory: whom it waits for, its place in line. */
export function describeWait(stateDir: string, timeoutMs: number, holder: HolderInfo | undefined, position = 1): string {
  const line = position > 1 ? `; ${position - 1} ${position === 2 ? 'command waits' : 'commands wait'} ahead of this one` : '';
  return `waiting up to ${Math.round(timeoutMs / 1000)}s for state directory ${stateDir}, held by ${describeHolder(holder)}${line}`;
}

/**
 * Records the control socket of `aion serve` in the holder file this process wrote when it
 * opened the directory (written whole to a temporary file and renamed, so readers never see
 * half of it). Refuses to touch a holder file written by another process.
 */
export function recordHolderSocket(stateDir: string, socket: string): void {
  const current = readHolder(stateDir);
  if (current && current.pid !== process.pid) {
    throw new Error(`the holder file names pid ${current.pid}, not this process`);
  }
  const info: HolderInfo = { ...(current ?? { pid: process.pid, command: 'aion serve', since: new Date().toISOString() }), socket };
  const file = holderPath(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Which directory a path names, whatever path reaches it: `<dev>:<ino>` of the directory
 * itself. A symlink to it or a move of it is the same directory; a copy (which carries every
 * file inside, ids included) is another. Undefined when the path cannot be looked at.
 */
export function directoryIdentity(dir: string): string | undefined {
  try {
    const st = statSync(dir, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
