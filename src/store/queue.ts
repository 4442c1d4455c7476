// The waiting line of a state directory, beside LevelDB's lock (which has no queue): each
// process that finds the directory held takes a ticket, a file in `<state>/queue/` named by
// the system-wide monotonic clock, and only the first live ticket tries the lock; a newcomer
// that finds anyone in line queues behind them instead of barging. A ticket whose process is
// gone (killed while waiting) or that its waiter stopped refreshing (its pid reused by another
// program) is removed by whoever sees it. Advisory like the holder file:
// if the line cannot be written, waiting falls back to plain retries.
import { readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { makeDirs } from '../dirs.js';

export function queueDir(stateDir: string): string {
  return path.join(stateDir, 'queue');
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A waiter refreshes its ticket at every look (at most every 250 ms); older than this, it is gone. */
const STALE_TICKET_MS = 15_000;

/** Live tickets in arrival order (dead ones removed). Never throws. */
export function liveTickets(stateDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(queueDir(stateDir));
  } catch {
    return [];
  }
  const live: string[] = [];
  for (const name of names.sort()) {
    const m = /^\d{20}-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m) continue;
    const file = path.join(queueDir(stateDir), name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st) continue;
    if (alive(Number(m[1])) && Date.now() - st.mtimeMs < STALE_TICKET_MS) live.push(name);
    else rmSync(file, { force: true });
  }
  return live;
}

export class Ticket {
  private constructor(
    private readonly stateDir: string,
    readonly name: string,
  ) {}

  /** Takes a place at the end of the line; undefined when the line cannot be written. */
  static take(stateDir: string): Ticket | undefined {
    const name = `${process.hrtime.bigint().toString().padStart(20, '0')}-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      makeDirs(queueDir(stateDir), 0o700);
      writeFileSync(path.join(queueDir(stateDir), name), '', { mode: 0o600, flag: 'wx' });
      return new Ticket(stateDir, name);
    } catch {
      return undefined;
    }
  }

  /** 1 when it is this ticket's turn; else its place in the line. */
  position(): number {
    try {
      const now = new Date();
      utimesSync(path.join(queueDir(this.stateDir), this.name), now, now);
    } catch {
      // Removed as stale meanwhile (this process stalled): it waits on, in its old place or none.
    }
    const i = liveTickets(this.stateDir).indexOf(this.name);
    return i === -1 ? 1 : i + 1;
  }

  release(): void {
    rmSync(path.join(queueDir(this.stateDir), this.name), { force: true });
  }
}
