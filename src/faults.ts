// Named fault points for crash-consistency testing. `faultPoint(name)` kills this process with
// SIGKILL — no cleanup, no flushing, exactly like a power cut of the process — when the
// environment variable AION_FAULT_POINT equals `name`. AION_FAULT_SKIP=<n> lets the first n
// hits of that point pass and kills at hit n + 1 (so a point inside a loop can be enumerated).
// The environment is read once, when this module loads: with AION_FAULT_POINT unset a call is a
// single comparison against undefined.
const POINT: string | undefined = process.env.AION_FAULT_POINT || undefined;
const SKIP = POINT === undefined ? 0 : Math.max(0, Number.parseInt(process.env.AION_FAULT_SKIP ?? '0', 10) || 0);
let hits = 0;

export function faultPoint(name: string): void {
  if (POINT === undefined || name !== POINT) return;
  if (hits++ < SKIP) return;
  process.kill(process.pid, 'SIGKILL');
}
