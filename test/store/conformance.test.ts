// The store conformance suite: the deploy-seam and run-engine tests (test/engine) run again,
// unchanged, on the PostgreSQL backend (AION_TEST_BACKEND=postgres: each test's state
// directory becomes a schema of its own, dropped afterwards). They already ran on LevelDB in
// this same `npm test`. Skips loudly, saying why, only when no PostgreSQL can be had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { pgServer } from '../helpers/postgres.js';

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.NODE_TEST_CONTEXT;
  return copy;
}

test('the engine tests pass on the PostgreSQL backend', { timeout: 600_000 }, async (t) => {
  const server = await pgServer();
  if ('skip' in server) {
    process.stderr.write(`SKIPPED: PostgreSQL conformance suite: ${server.skip}\n`);
    t.skip(server.skip);
    return;
  }
  const dir = path.join(ROOT, 'dist', 'test', 'engine');
  const files = readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => path.join(dir, f));
  assert.ok(files.length >= 5, 'the engine test files are there');
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', ...files], {
      cwd: ROOT,
      // Not a subtest run of ours: without NODE_TEST_CONTEXT the child runs and reports on its own.
      env: { ...withoutTestContext(process.env), AION_TEST_BACKEND: 'postgres', AION_TEST_PG_URL: server.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, output }));
  });
  const pass = /^# pass (\d+)/m.exec(output)?.[1];
  const fail = /^# fail (\d+)/m.exec(output)?.[1];
  t.diagnostic(`PostgreSQL backend: ${pass} passed, ${fail} failed`);
  if (code !== 0) {
    const failures = output.split('\n').filter((l) => /^\s*not ok/.test(l)).slice(0, 20).join('\n');
    assert.fail(`engine tests failed on PostgreSQL (exit ${code}):\n${failures}\n${output.slice(-3000)}`);
  }
  assert.ok(Number(pass) > 50, `the engine tests ran (${pass} passed)`);
});
