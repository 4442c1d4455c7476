// The ink views rendered into fake terminal streams: the load steps with spinner, progress bar
// and failure mark, and the top view's refresh loop, error line and quit key.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Output } from '../../src/cli/output.js';
import { startLoadView, LARGE_ARCHIVE_BYTES } from '../../src/cli/views/load.js';
import { renderTop, runTopView, type TopSnapshot } from '../../src/cli/views/top.js';
import { SPINNER_FRAMES } from '../../src/cli/views/spinner.js';
import type { LoadOutcome, RunSummary, VersionInfo } from '../../src/engine/types.js';
import { plain, terminal, waitFor } from './support.js';
// In CI, ink draws only the last frame (at unmount): intermediate frames are not asserted there.
import inCi from 'is-in-ci';

const V1 = 'a'.repeat(64);
const V2 = 'b'.repeat(64);

function outcome(extra: Partial<LoadOutcome> = {}): LoadOutcome {
  return { workflow_type: 'hello', version: V2, workflow_types: ['hello'], deployed_entry_module: `hello$${V2}`, entry_function: 'main', freshly_loaded: true, route_changed: true, routed: true, label: null, previous: V1, ...extra };
}

function version(v: string, state: VersionInfo['state'], pins = { live: 0, recoverable: 0, recorded_children: 0 }): VersionInfo {
  return {
    workflow_type: 'hello', version: v, deployed_entry_module: `hello$${v}`, entry_function: 'main', manifest_version: 1, manifest_digest: 'd'.repeat(64),
    loaded_at: new Date(Date.now() - 120_000).toISOString(), label: null, route_active: state === 'routed', rollback_target: false, ramp_percent: null, pins, state,
    package_types: ['hello'], internal: false, source: 'loaded',
  };
}

function runOf(id: string, status: RunSummary['status'], v = V1): RunSummary {
  const at = new Date(Date.now() - 5_000).toISOString();
  return { workflow_id: id, run_id: `${id}-r`, workflow_type: 'hello', version: v, status, started_at: at, updated_at: at };
}

describe('load view', () => {
  test('steps, spinner and a progress bar for a large archive; all done at the end', async () => {
    const streams = terminal();
    const view = startLoadView(streams, { archive: 'big.aion', color: true });
    const total = 8 * LARGE_ARCHIVE_BYTES;
    view.store.step('read');
    view.store.step('read', { bytes: 3 * LARGE_ARCHIVE_BYTES, total });
    await new Promise((r) => setTimeout(r, 150));
    view.store.step('validate', { bytes: total, total });
    view.store.step('hash');
    view.store.step('register', { workflow_type: 'hello', version: V2 });
    view.store.step('verify');
    view.store.step('persist');
    view.store.step('route');
    view.store.finish(outcome());
    await view.close();
    const text = plain(streams.stderr.text);
    if (!inCi) assert.ok(SPINNER_FRAMES.some((f) => text.includes(f)), 'a spinner frame was drawn');
    if (!inCi) assert.match(text, /38% 3\.0 MiB of 8\.0 MiB/, 'progress while reading');
    const last = text.slice(text.lastIndexOf('load big.aion') - 2);
    assert.match(last, /^✓ load big\.aion/);
    assert.equal((last.match(/✓ /g) ?? []).length, 8, `every step done: ${last}`);
    assert.equal(streams.stdout.text, '', 'the view draws on stderr');
  });

  test('a failure marks the step that was running', async () => {
    const streams = terminal();
    const view = startLoadView(streams, { archive: 'bad.aion', color: false });
    view.store.step('read');
    view.store.step('validate');
    view.store.fail();
    await view.close();
    const text = plain(streams.stderr.text);
    const last = text.slice(text.lastIndexOf('bad.aion') - 7);
    assert.match(last, /✗ load bad\.aion/);
    assert.match(last, /✓ read archive/);
    assert.match(last, /✗ validate/);
    assert.match(last, /· hash modules/);
    assert.ok(!/\x1b\[[0-9;]*m/.test(streams.stderr.text), 'no colour when colour is off');
  });

  test('through aion serve (no steps reported): everything done at the end', async () => {
    const streams = terminal();
    const view = startLoadView(streams, { archive: 'x.aion', remote: 'aion serve (pid 42)', color: true });
    view.store.finish(outcome({ freshly_loaded: false, route_changed: false }));
    await view.close();
    const text = plain(streams.stderr.text);
    assert.match(text, /✓ load x\.aion via aion serve \(pid 42\)/);
    assert.match(text, /✓ route \(unchanged\)/);
  });
});

describe('top view', () => {
  test('renderTop: routes, versions with state and pins, run counts, running runs first', () => {
    const out = new Output(terminal(), { json: false, color: false });
    const snap: TopSnapshot = {
      versions: [version(V1, 'draining', { live: 1, recoverable: 2, recorded_children: 0 }), version(V2, 'routed')],
      runs: [runOf('done-1', 'completed', V2), runOf('order-7', 'running'), runOf('bad-1', 'failed')],
      at: Date.now(),
      via: 'embedded',
    };
    const text = renderTop(out, snap, 40);
    assert.match(text, /ROUTES\n {2}hello → bbbbbbbbbbbb loaded 2m ago/);
    assert.match(text, /hello +aaaaaaaaaaaa +draining +1 +2 +0 +2m ago/);
    assert.match(text, /RUNS {2}1 running · 1 failed · 1 completed/);
    const rows = text.split('\n').filter((l) => /^ {2}\S+ +hello +/.test(l) && !/drain|routed/.test(l));
    assert.deepEqual(rows.map((l) => l.trim().split(/ +/)[0]), ['order-7', 'bad-1', 'done-1']);
    const tight = renderTop(out, { ...snap, runs: Array.from({ length: 50 }, (_, i) => runOf(`r${i}`, 'running')) }, 20);
    assert.match(tight, /… and \d+ more \(aion runs\)/);
  });

  test('refreshes on its interval, shows errors, and quits on q', async () => {
    const streams = terminal();
    const out = new Output(streams, { json: false, color: true });
    let calls = 0;
    const fetch = async (note: (m: string | undefined) => void): Promise<TopSnapshot> => {
      calls++;
      if (calls === 2) {
        note('waiting for the state directory');
        throw new Error('state directory is busy');
      }
      return { versions: [version(V2, 'routed')], runs: [runOf('order-7', 'running', V2)], at: Date.now(), via: 'aion serve (pid 42)' };
    };
    const done = runTopView(streams, { out, fetch, intervalMs: 40, stateDir: '/tmp/state' });
    await waitFor(() => calls >= 4, 5000, 'four refreshes');
    await waitFor(() => streams.stdin.rawMode, 5000, 'raw mode');
    streams.stdin.press('q');
    await done;
    const text = plain(streams.stdout.text);
    assert.match(text, /aion top {2}\/tmp\/state {2}· aion serve \(pid 42\)/);
    assert.match(text, /hello → bbbbbbbbbbbb/);
    assert.match(text, /order-7/);
    if (!inCi) assert.match(text, /error: state directory is busy/);
    assert.ok(streams.stdout.text.includes('\x1b['), 'colour on a terminal');
    const settled = calls;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(calls, settled, 'no refresh after quitting');
  });

  test('without a keyboard (stdin not a terminal) it still draws; no raw mode is requested', async () => {
    const streams = terminal();
    streams.stdin.isTTY = false;
    const out = new Output(streams, { json: false, color: false });
    let calls = 0;
    const fetch = async (): Promise<TopSnapshot> => {
      calls++;
      return { versions: [], runs: [], at: Date.now(), via: 'embedded' };
    };
    const stop = new AbortController();
    const done = runTopView(streams, { out, fetch, intervalMs: 30, stateDir: '/s', signal: stop.signal });
    await waitFor(() => calls >= 2, 5000, 'two refreshes');
    assert.equal(streams.stdin.rawMode, false);
    // No q key to press (Ctrl+C ends the process); here the test ends it.
    stop.abort();
    await done;
    assert.match(plain(streams.stdout.text), /no workflow type is routed/);
    assert.doesNotMatch(plain(streams.stdout.text), /q to quit/);
  });
});

describe('the load view on tiny terminals', () => {
  test('never clears the screen or scrollback: no view at 8 rows or fewer, or 0 rows', async () => {
    const { LOAD_VIEW_LINES } = await import('../../src/cli/commands/load.js');
    const { LOAD_STEPS } = await import('../../src/engine/engine.js');
    assert.equal(LOAD_VIEW_LINES, LOAD_STEPS.length + 1);
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { packFixture } = await import('../helpers/packages.js');
    const { runCli } = await import('../../src/cli/program.js');
    const { FakeStream, FakeKeyboard } = await import('./support.js');
    const dir = mkdtempSync(path.join(tmpdir(), 'aion-tiny-'));
    const v1 = await packFixture('hello_v1', dir, 'v1.aion');
    for (const rows of [0, 1, 8, 40]) {
      const streams = { stdout: new FakeStream({ tty: true, rows }), stderr: new FakeStream({ tty: true, rows }), stdin: new FakeKeyboard() };
      const code = await runCli(['--state-dir', path.join(dir, `s${rows}`), 'load', v1.path], streams);
      assert.equal(code, 0, streams.stderr.text);
      const err = streams.stderr.text;
      assert.ok(!err.includes('\x1b[2J') && !err.includes('\x1b[3J'), `rows ${rows}: the screen was cleared`);
      if (rows === 40) assert.match(err, /persist/, 'a tall terminal gets the view');
      else assert.doesNotMatch(err, /persist/, `rows ${rows}: no view`);
      assert.match(streams.stdout.text, /load new version/);
    }
  });
});

describe('top shows ramps and the rollback target', () => {
  test('in ROUTES and in the NOTE column', () => {
    const out = new Output(terminal(false), { json: false, color: false });
    const V3 = 'c'.repeat(64);
    const ramping: VersionInfo = { ...version(V3, 'ramping'), ramp_percent: 10 };
    const target: VersionInfo = { ...version(V1, 'drained'), rollback_target: true };
    const text = renderTop(out, { versions: [target, version(V2, 'routed'), ramping], runs: [], at: Date.now(), via: 'embedded' }, 40);
    assert.match(text, new RegExp(`hello → ${V2} loaded 2m ago  ramping 10% → ${V3} · rollback → ${V1}`));
    assert.match(text, /ramping 10%/);
    assert.match(text, /rollback target/);
  });
});
