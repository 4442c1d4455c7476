// Named fault points for crash-consistency testing. `faultPoint(name)` kills this process with
// SIGKILL — no cleanup, no flushing, exactly like a power cut of the process — when the
// environment variable AION_FAULT_POINT equals `name`. AION_FAULT_SKIP=<n> lets the first n
// hits of that point pass and kills at hit n + 1 (so a point inside a loop can be enumerated).
// AION_FAULT_TRACE=<file> appends the name of every point reached to <file>, one per line
// (how the fault tests learn which points an operation passes, and how often).
// The environment is read once, when this module loads: with neither variable set, a call is
// one comparison against undefined.
import { appendFileSync } from 'node:fs';

const POINT: string | undefined = process.env.AION_FAULT_POINT || undefined;
const TRACE: string | undefined = process.env.AION_FAULT_TRACE || undefined;
const ACTIVE = POINT !== undefined || TRACE !== undefined;
const SKIP = POINT === undefined ? 0 : Math.max(0, Number.parseInt(process.env.AION_FAULT_SKIP ?? '0', 10) || 0);
let hits = 0;

export function faultPoint(name: string): void {
  if (!ACTIVE) return;
  if (TRACE !== undefined) appendFileSync(TRACE, name + '\n');
  if (name !== POINT) return;
  if (hits++ < SKIP) return;
  process.kill(process.pid, 'SIGKILL');
}
