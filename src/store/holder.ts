// The holder file: who holds a state directory (pid, command, since). LevelDB's own lock is
// the authority; this advisory file only lets a waiting process say whom it waits for.
import { readFileSync } from 'node:fs';
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
