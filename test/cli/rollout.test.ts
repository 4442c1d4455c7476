// The rollout commands in-process (run functions on fake streams): hostile input is a usage
// error that changes nothing, and the text output says what happened.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { packFixture, type Packed } from '../helpers/packages.js';
import { parsePercent } from '../../src/cli/commands/ramp.js';
import { parseDuration } from '../../src/cli/waiting.js';
import { run } from '../ux/support.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;
let state: string;
const s = () => ['--state-dir', state];

before(async () => {
  work = tempDir('aion-cli-rollout-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
  state = path.join(work.dir, 'state');
  assert.equal((await run([...s(), 'load', v1.path], false)).code, 0);
  assert.equal((await run([...s(), 'load', v2.path, '--no-route'], false)).code, 0);
});
after(() => work.cleanup());

async function history(): Promise<unknown[]> {
  return JSON.parse((await run([...s(), 'history', '--json'], false)).stdout).history;
}

describe('parsing', () => {
  test('percents and durations', () => {
    assert.deepEqual(['10', '12.5', '0.01', '99.99', '5%', ' 7 '].map(parsePercent), [10, 12.5, 0.01, 99.99, 5, 7]);
    for (const bad of ['0', '100', '-1', '12.345', 'ten', '', '1e1', '0x10', '50%%']) assert.throws(() => parsePercent(bad), /percent must be/, bad);
    assert.deepEqual(['90s', '10m', '1h', '500ms', '1h30m', '2', '0.5'].map((d) => parseDuration(d, '--timeout')), [90_000, 600_000, 3_600_000, 500, 5_400_000, 2000, 500]);
    for (const bad of ['', '-1s', '10 m', '1y', 'soon', '1h-5m']) assert.throws(() => parseDuration(bad, '--timeout'), /--timeout must be a duration/, bad);
  });
});

describe('hostile input changes nothing', () => {
  test('ramp, wait, prune and unload --wait refuse bad arguments with exit 2', async () => {
    const before = await history();
    const cases: string[][] = [
      ['ramp', 'hello', v2.version, '0'],
      ['ramp', 'hello', v2.version, '100'],
      ['ramp', 'hello', v2.version, '1.234'],
      ['ramp', 'hello', v2.version],
      ['ramp', 'hello', v2.version, '10', '--clear'],
      ['ramp', 'hello', v1.version, '10'], // the routed version
      ['ramp', 'hello', 'zz', '10'],
      ['wait', 'hello', v1.version],
      ['wait', 'hello', v1.version, '--drained', '--routed'],
      ['wait', 'hello', v1.version, '--drained', '--timeout', 'soon'],
      ['wait', 'hello', v1.version, '--drained', '--interval', '1ms'],
      ['prune', '--keep', '-1'],
      ['prune', '--keep', 'two'],
      ['unload', 'hello', v2.version, '--wait', 'forever'],
    ];
    for (const args of cases) {
      const r = await run([...s(), ...args, '--json'], false);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}`);
      assert.equal(JSON.parse(r.stdout).error.code, 'usage');
    }
    assert.deepEqual(await history(), before);
    const versions = JSON.parse((await run([...s(), 'versions', '--json'], false)).stdout).versions;
    assert.deepEqual(versions.map((v: { version: string; state: string }) => [v.version, v.state]), [[v1.version, 'routed'], [v2.version, 'drained']]);
  });

  test('not_found: an unknown type or version', async () => {
    for (const args of [['ramp', 'nope', v2.version, '10'], ['ramp', 'nope', '--clear'], ['status', 'nope'], ['prune', 'nope'], ['wait', 'hello', 'ffffffff', '--drained']]) {
      const r = await run([...s(), ...args, '--json'], false);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stdout}`);
    }
  });
});

describe('text output', () => {
  test('ramp, status, versions and clear say what happened', async () => {
    const ramp = await run([...s(), 'ramp', 'hello', v2.version.slice(0, 8), '25'], false);
    assert.equal(ramp.code, 0, ramp.stderr);
    assert.match(ramp.stdout, new RegExp(`^ramp hello → ${v2.version} for 25% of new starts\nthe rest → ${v1.version} \\(routed\\); promote with: aion route hello ${v2.version.slice(0, 12)}\n$`));
    const status = await run([...s(), 'status'], false);
    assert.match(status.stdout, new RegExp(`^hello\n  routed    ${v1.version}\n  ramping   ${v2.version} 25%\n  rollback  none\n$`));
    const versions = await run([...s(), 'versions'], false);
    assert.match(versions.stdout, /ramping 25%/);
    const clear = await run([...s(), 'ramp', 'hello', '--clear'], false);
    assert.match(clear.stdout, new RegExp(`^ramp cleared hello: every new start → ${v1.version} \\(was ${v2.version} at 25%\\)\n$`));
    const again = await run([...s(), 'ramp', 'hello', '--clear', '--json'], false);
    assert.deepEqual(JSON.parse(again.stdout), { workflow_type: 'hello', routed: v1.version, ramping: null, previous_ramp: null });
    const dry = await run([...s(), 'ramp', 'hello', v2.version, '5', '--dry-run', '--json'], false);
    assert.equal(JSON.parse(dry.stdout).dry_run, true);
    assert.equal(JSON.parse((await run([...s(), 'status', '--json'], false)).stdout).types[0].ramping, null, 'a dry run ramps nothing');
    const hist = await run([...s(), 'history'], false);
    assert.match(hist.stdout, /ramp 25%/);
    assert.match(hist.stdout, /ramp cleared/);
    assert.match(hist.stdout, /load \(no route\)/);
  });
});
