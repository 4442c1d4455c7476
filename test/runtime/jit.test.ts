// AION_JIT (src/jit.cts): which V8 tiers the process runs, read once. The effect is checked in
// child processes with V8's natives syntax (%GetOptimizationStatus): a hot function reaches
// TurboFan under `optimizing` and never under the default `baseline`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { jitMode } from '../../src/jit.cjs';
import { ROOT } from '../helpers/cli.js';

const JIT = path.join(ROOT, 'dist', 'src', 'jit.cjs');

/** Runs a hot function in a child under AION_JIT=`mode`; whether TurboFan compiled it (or the problem). */
function turbofanned(mode: string | undefined): { code: number | null; out: string; err: string } {
  // Bit 6 of %GetOptimizationStatus is "TurboFanned" in Node 20's V8. The loop waits (yielding,
  // so a concurrent compile job can land) up to 1.5 s for it (TurboFan takes a few milliseconds here).
  const script = `
    const r = require(${JSON.stringify(JIT)}).applyJit();
    if ('problem' in r) { process.stdout.write('problem: ' + r.problem); process.exit(0); }
    function hot(x) { return (x * 31 + 7) % 1000003; }
    const until = Date.now() + 1500;
    (function spin() {
      let s = 0;
      for (let i = 0; i < 200000; i++) s += hot(i);
      if ((%GetOptimizationStatus(hot) & 64) !== 0) return process.stdout.write('turbofan');
      if (Date.now() > until) return process.stdout.write('no turbofan');
      setImmediate(spin);
    })();`;
  const env = { ...process.env };
  if (mode === undefined) delete env.AION_JIT;
  else env.AION_JIT = mode;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('AION_JIT', () => {
  test('reads the mode, defaulting to baseline, and names a bad value', () => {
    assert.deepEqual(jitMode({}), { mode: 'baseline' });
    assert.deepEqual(jitMode({ AION_JIT: '' }), { mode: 'baseline' });
    assert.deepEqual(jitMode({ AION_JIT: 'optimizing' }), { mode: 'optimizing' });
    assert.deepEqual(jitMode({ AION_JIT: 'fast' }), { problem: "AION_JIT must be 'baseline' or 'optimizing', not 'fast'" });
    // Hostile: a terminal escape in the value is not echoed.
    const hostile = jitMode({ AION_JIT: '\x1b]0;pwned\x07x' });
    assert.ok('problem' in hostile && !/[\x00-\x1f\x7f]/.test(hostile.problem), JSON.stringify(hostile));
  });

  test('baseline (the default) keeps a hot function out of TurboFan; optimizing lets it in', () => {
    const base = turbofanned(undefined);
    assert.equal(base.code, 0, base.err);
    assert.equal(base.out, 'no turbofan');
    const opt = turbofanned('optimizing');
    assert.equal(opt.code, 0, opt.err);
    assert.equal(opt.out, 'turbofan', 'the probe can see TurboFan when it is allowed');
  });

  test('a bad value changes nothing', () => {
    const r = turbofanned('turbo');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "problem: AION_JIT must be 'baseline' or 'optimizing', not 'turbo'");
  });
});
