// `npm run test:faults`: the reliability suites at full size (AION_FAULTS=full unless set),
// then one summary — operations tried, faults injected, failures found — per suite and in total.
// `npm test` runs the same suites in their bounded form; there this file (run without --run,
// as node --test runs every file under dist/test) does nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface SuiteStats {
  suite: string;
  operations: number;
  faults: number;
  failureCount: number;
  failures: string[];
  extra: Record<string, number>;
}

function main(): number {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const suites = ['crash', 'concurrent', 'hostile', 'corrupt'].map((s) => path.join(here, `${s}.test.js`));
  const tmp = mkdtempSync(path.join(tmpdir(), 'aion-faults-stats-'));
  const statsFile = path.join(tmp, 'stats.jsonl');
  const mode = process.env.AION_FAULTS ?? 'full';
  const started = Date.now();
  process.stdout.write(`aion reliability suites (${mode}): ${suites.map((s) => path.basename(s)).join(', ')}\n`);
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...suites], {
    stdio: 'inherit',
    env: { ...process.env, AION_FAULTS: mode, AION_FAULTS_STATS: statsFile },
  });
  const stats: SuiteStats[] = existsSync(statsFile)
    ? readFileSync(statsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SuiteStats)
    : [];
  rmSync(tmp, { recursive: true, force: true });
  const total = { operations: 0, faults: 0, failures: 0 };
  process.stdout.write('\n== reliability summary\n');
  for (const s of stats) {
    total.operations += s.operations;
    total.faults += s.faults;
    total.failures += s.failureCount;
    const extra = Object.entries(s.extra).map(([k, v]) => `${k} ${v}`).join(', ');
    process.stdout.write(`${s.suite.padEnd(11)} operations tried ${String(s.operations).padStart(5)}  faults injected ${String(s.faults).padStart(5)}  failures found ${s.failureCount}${extra ? `  (${extra})` : ''}\n`);
    for (const f of s.failures.slice(0, 10)) process.stdout.write(`  failure: ${f}\n`);
  }
  process.stdout.write(
    `${'total'.padEnd(11)} operations tried ${String(total.operations).padStart(5)}  faults injected ${String(total.faults).padStart(5)}  failures found ${total.failures}  in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  if (stats.length < suites.length) process.stdout.write(`(only ${stats.length} of ${suites.length} suites reported: see the test output above)\n`);
  return r.status === 0 && total.failures === 0 && stats.length === suites.length ? 0 : 1;
}

if (process.argv.includes('--run')) process.exitCode = main();
