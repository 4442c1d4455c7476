// `aion doctor`'s checks run in-process on a state directory: the crash tests expect them to
// agree with the independent oracle in support.ts (no problems after any kill).
import { Store } from '../../src/store/store.js';
import { diagnose, type DoctorReport } from '../../src/engine/doctor.js';

export async function doctorReport(stateDir: string, repair = false): Promise<DoctorReport> {
  const store = await Store.open(stateDir, { create: false, missingOk: true, lockTimeoutMs: 10_000, command: 'fault tests' });
  try {
    return await diagnose(store, { repair });
  } finally {
    await store.close();
  }
}

/** Problems doctor finds, as `kind key: message` lines (empty: doctor says ok). */
export async function checkStateDir(stateDir: string): Promise<string[]> {
  const report = await doctorReport(stateDir);
  return report.problems.map((p) => `${p.kind} ${p.key}: ${p.message}`);
}
