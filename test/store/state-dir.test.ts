// Hostile state directories through bin/aion and in-process: paths that can never be created,
// stale holder files, copies of served directories, clock skew in the deploy history.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import { aion, aionAsync, BIN, FIXTURES, tempDir } from '../helpers/cli.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { startServe } from '../server/support.js';
import { openEngine } from '../engine/support.js';
import { K } from '../../src/store/keys.js';

let work: { dir: string; cleanup: () => void };
let v1: Packed;
let v2: Packed;

before(async () => {
  work = tempDir('aion-statedir-');
  v1 = await packFixture('hello_v1', work.dir, 'v1.aion');
  v2 = await packFixture('hello_v2', work.dir, 'v2.aion');
});
after(() => work.cleanup());

/** bin/aion with a short deadline: a command that spins is a failure, not a hung suite. */
function aionQuick(args: string[], timeoutMs = 15_000, env: NodeJS.ProcessEnv = {}) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs, input: '', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

describe('a state directory that can never be created', () => {
  test('under /proc: load fails store (exit 10) at once, naming the path, instead of spinning', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
    const r = aionQuick(['--state-dir', '/proc/aion-state', 'load', v1.path, '--json']);
    assert.equal(r.signal, null, `killed after ${r.ms} ms: it spun`);
    assert.equal(r.code, 10, r.stdout + r.stderr);
    const error = JSON.parse(r.stdout).error;
    assert.equal(error.code, 'store');
    assert.match(error.message, /cannot create state directory \/proc\/aion-state/);
    assert.equal(error.state_dir, '/proc/aion-state');
    assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  });

  test('pack --out under /proc: refused at once (usage), no spinning', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
    const r = aionQuick(['pack', path.join(FIXTURES, 'hello_v1'), '--out', '/proc/aion-out/x.aion', '--json']);
    assert.equal(r.signal, null, `killed after ${r.ms} ms: it spun`);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(JSON.parse(r.stdout).error.message, /cannot write archive \/proc\/aion-out\/x\.aion/);
  });

  test('a parent that is a regular file: store (exit 10), nothing created', () => {
    const file = path.join(work.dir, 'plain-file');
    spawnSync('sh', ['-c', `printf x > '${file}'`]);
    const r = aionQuick(['--state-dir', path.join(file, 'a', 'b'), 'load', v1.path, '--json']);
    assert.equal(r.code, 10, r.stdout + r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, 'store');
  });
});

describe('doctor and a dead server\'s holder file', () => {
  test('a holder naming a killed server is stale for doctor too: it waits for the lock like any command, then checks', async () => {
    const state = path.join(work.dir, 'doctor-stale');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    const served = await startServe(state);
    await served.stop('SIGKILL');
    const holder = JSON.parse(readFileSync(path.join(state, 'holder.json'), 'utf8'));
    assert.equal(holder.pid, served.pid, 'the killed server left its holder file, naming its socket');
    assert.ok(holder.socket);
    // Someone else (not a server) holds the LevelDB lock for a moment, leaving that holder file.
    const db = new Level(path.join(state, 'db'));
    await db.open();
    const started = Date.now();
    const doctor = aionAsync(['--state-dir', state, 'doctor', '--json', '--lock-timeout', '20']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await db.close();
    const r = await doctor;
    assert.equal(r.code, 0, `refused after ${Date.now() - started} ms: ${r.stdout}${r.stderr}`);
    assert.equal(r.json.ok, true);
  });

  test('a live server: doctor still refuses at once (exit 8), naming it', async () => {
    const state = path.join(work.dir, 'doctor-live');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    const served = await startServe(state);
    try {
      const r = aion(['--state-dir', state, 'doctor', '--json', '--lock-timeout', '20']);
      assert.equal(r.code, 8, r.stdout);
      assert.match(r.json.error.message, new RegExp(`served by aion serve \\(pid ${served.pid}\\)`));
    } finally {
      await served.stop();
    }
  });
});

describe('a copy of a served state directory', () => {
  test('is never served by the original\'s server: load and start land in the copy, the original is unchanged', async () => {
    const original = path.join(work.dir, 'served-original');
    const copy = path.join(work.dir, 'served-copy');
    assert.equal(aion(['--state-dir', original, 'load', v1.path]).code, 0);
    const served = await startServe(original);
    try {
      // A hot copy, as an operator makes it: holder.json names the original's socket.
      assert.equal(spawnSync('cp', ['-r', original, copy]).status, 0);
      assert.equal(JSON.parse(readFileSync(path.join(copy, 'holder.json'), 'utf8')).socket, served.socket);
      const loaded = aion(['--state-dir', copy, 'load', v2.path, '--json']);
      assert.equal(loaded.code, 0, loaded.stdout + loaded.stderr);
      const started = aion(['--state-dir', copy, 'start', 'hello', '--id', 'in-the-copy', '--json']);
      assert.equal(started.code, 0, started.stdout + started.stderr);
      assert.equal(started.json.version, v2.version);
      // The original, asked through its server, saw none of it.
      const versions = aion(['--state-dir', original, 'versions', '--json']);
      assert.deepEqual(versions.json.versions.map((v: { version: string }) => v.version), [v1.version]);
      assert.equal(aion(['--state-dir', original, 'show', 'in-the-copy', '--json']).code, 3);
    } finally {
      await served.stop();
    }
    const copied = aion(['--state-dir', copy, 'versions', '--json']);
    assert.deepEqual(copied.json.versions.map((v: { version: string }) => v.version).sort(), [v1.version, v2.version].sort());
    assert.equal(aion(['--state-dir', copy, 'show', 'in-the-copy', '--json']).code, 0);
    const orig = aion(['--state-dir', original, 'versions', '--json']);
    assert.deepEqual(orig.json.versions.map((v: { version: string }) => v.version), [v1.version]);
  });
});

describe('the deploy history is ordered by sequence, not by the clock', () => {
  test('a clock an hour behind: the rollback still sorts last, and a second rollback toggles back', async () => {
    const state = path.join(work.dir, 'clock-skew');
    let now = Date.parse('2026-12-01T12:00:00Z');
    const { engine } = await openEngine(state, { now: () => now });
    try {
      await engine.loadPackage({ path: v1.path });
      now += 1000;
      await engine.loadPackage({ path: v2.path });
      now -= 3_600_000; // the clock is set back an hour
      const back = await engine.rollbackWorkflowVersion('hello');
      assert.equal(back.version, v1.version);
      const history = await engine.deployHistory('hello');
      assert.deepEqual(history.map((r) => `${r.operation} ${r.version.slice(0, 6)}`), [`load ${v1.version.slice(0, 6)}`, `load ${v2.version.slice(0, 6)}`, `route ${v1.version.slice(0, 6)}`]);
      assert.equal(history[2]!.at, new Date(now).toISOString(), 'at stays the (skewed) wall-clock time, as information');
      assert.deepEqual((await engine.deployHistory('hello', 1)).map((r) => r.operation), ['route']);
      const again = await engine.rollbackWorkflowVersion('hello');
      assert.equal(again.version, v2.version, 'the second rollback returns to v2');
    } finally {
      await engine.close();
    }
  });

  test('records under the old clock-ordered keys read first, in their order, then new ones', async () => {
    const state = path.join(work.dir, 'old-keys');
    const { engine: first } = await openEngine(state);
    await first.loadPackage({ path: v1.path });
    await first.close();
    // A directory written by an aion that keyed records by time: rewrite the record that way.
    const db = new Level<string, string>(path.join(state, 'db'));
    await db.open();
    const records: [string, string][] = [];
    for await (const entry of db.iterator(K.auditRange())) records.push(entry);
    assert.equal(records.length, 1);
    await db.batch([
      { type: 'del', key: records[0]![0] },
      { type: 'put', key: ['audit', String(Date.parse('2099-01-01T00:00:00Z')).padStart(15, '0'), '0000000001', '000000'].join('\x00'), value: records[0]![1] },
    ]);
    await db.close();
    let now = Date.parse('2026-12-01T12:00:00Z');
    const { engine } = await openEngine(state, { now: () => now });
    try {
      await engine.loadPackage({ path: v2.path });
      now += 1000;
      assert.deepEqual((await engine.deployHistory('hello')).map((r) => r.version), [v1.version, v2.version]);
      assert.equal((await engine.rollbackWorkflowVersion('hello')).version, v1.version);
      assert.deepEqual((await engine.deployHistory('hello')).map((r) => r.operation), ['load', 'load', 'route']);
    } finally {
      await engine.close();
    }
  });
});

describe("the routed version's package row lost", () => {
  test('start refuses naming the routed version that is not loaded and the fix, never another version', async () => {
    const state = path.join(work.dir, 'lost-route');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'load', v2.path]).code, 0);
    const db = new Level<string, string>(path.join(state, 'db'));
    await db.open();
    await db.put(['pkg', 'hello', v2.version].join('\x00'), '{ corrupt');
    await db.close();
    const r = aion(['--state-dir', state, 'start', 'hello', '--json']);
    assert.equal(r.code, 3, r.stdout);
    const error = r.json.error;
    assert.equal(error.code, 'not_found');
    assert.match(error.message, new RegExp(`routed version ${v2.version.slice(0, 12)} of 'hello' is not loaded`));
    assert.doesNotMatch(error.message, /has no loaded version/);
    assert.equal(error.routed, v2.version);
    assert.deepEqual(error.loaded, [v1.version]);
    assert.match(aion(['--state-dir', state, 'start', 'hello']).stderr, /hint: run 'aion doctor'/);
    // The route pointer is kept: nothing was rerouted behind the operator's back.
    const db2 = new Level<string, string>(path.join(state, 'db'));
    await db2.open();
    assert.equal(await db2.get(['route', 'hello'].join('\x00')), v2.version);
    await db2.close();
    // doctor --repair rebuilds the row from its verifying archive; starts go to v2 again.
    assert.equal(aion(['--state-dir', state, 'doctor', '--repair']).code, 0);
    const again = aion(['--state-dir', state, 'start', 'hello', '--json']);
    assert.equal(again.code, 0, again.stdout);
    assert.equal(again.json.version, v2.version);
  });
});

describe('taking the state directory back after letting go of it', () => {
  test('restores the ramps with the routes (a start-driving command kept ramping after 25 ms idle)', async () => {
    const state = path.join(work.dir, 'reacquire');
    const { engine } = await openEngine(state, { releaseIdleMs: 10 });
    try {
      await engine.loadPackage({ path: v1.path });
      await engine.loadPackage({ path: v2.path }, { route: false });
      await engine.rampWorkflowVersion('hello', v2.version, 50);
      await new Promise((resolve) => setTimeout(resolve, 100)); // let go of the directory
      await engine.deployHistory(); // takes it back
      assert.deepEqual(engine.catalog.ramp('hello'), { version: v2.version, percent: 50 });
    } finally {
      await engine.close();
    }
  });
});

describe('load reads its input bounded, as inspect does', () => {
  const fifo = () => {
    const f = path.join(work.dir, `pipe-${Math.random().toString(36).slice(2)}.aion`);
    assert.equal(spawnSync('mkfifo', [f]).status, 0);
    return f;
  };
  for (const [what, input, code] of [
    ['a FIFO', fifo, 2],
    ['/dev/zero', () => '/dev/zero', 2],
    ['a directory', () => work.dir, 2],
  ] as [string, () => string, number][]) {
    test(`${what}: refused at once (exit ${code}), embedded and through aion serve, nothing written`, { skip: !existsSync('/dev/zero') && 'no /dev/zero' }, async () => {
      const state = path.join(work.dir, `bounded-${what.replace(/\W/g, '')}`);
      assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
      const r = aionQuick(['--state-dir', state, 'load', input(), '--json']);
      assert.equal(r.signal, null, `killed after ${r.ms} ms: it hung or grew`);
      assert.equal(r.code, code, r.stdout + r.stderr);
      assert.match(JSON.parse(r.stdout).error.message, /not an archive file/);
      const inspected = aionQuick(['inspect', input(), '--json']);
      assert.equal(inspected.code, code, 'inspect refuses it the same way');
      const served = await startServe(state);
      try {
        const remote = aionQuick(['--state-dir', state, 'load', input(), '--json']);
        assert.equal(remote.signal, null, `through serve: killed after ${remote.ms} ms`);
        assert.equal(remote.code, code, remote.stdout + remote.stderr);
      } finally {
        await served.stop();
      }
      assert.equal(aion(['--state-dir', state, 'versions', '--json']).json.versions.length, 1);
    });
  }

  test('a (sparse) file over the archive limit is refused from its size, as inspect does (invalid_package)', () => {
    const big = path.join(work.dir, 'big.aion');
    assert.equal(spawnSync('truncate', ['-s', '300M', big]).status, 0);
    const r = aionQuick(['--state-dir', path.join(work.dir, 'bounded-size'), 'load', big, '--json']);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(JSON.parse(r.stdout).error.message, /is 314572800 bytes, which exceeds the limit of 268435456 bytes/);
  });
});

describe('the lock serves waiters in arrival order', () => {
  test('four loads queued behind a held directory take it first come, first served, and say their place', async () => {
    const state = path.join(work.dir, 'queue');
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    const db = new Level(path.join(state, 'db'));
    await db.open();
    const waiters: ReturnType<typeof aionAsync>[] = [];
    try {
      for (const name of ['first', 'second', 'third', 'fourth']) {
        waiters.push(aionAsync(['--state-dir', state, 'load', v1.path, '-m', name, '--lock-timeout', '60']));
        await new Promise((resolve) => setTimeout(resolve, 1200)); // each one waits, backing off, before the next comes
      }
    } finally {
      await db.close();
    }
    const results = await Promise.all(waiters);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.match(results[0]!.stderr, /waiting up to 60s for state directory .*, held by/);
    assert.match(results[3]!.stderr, /3 commands wait ahead of this one/);
    const history = aion(['--state-dir', state, 'history', '--json']).json.history as { message?: string }[];
    assert.deepEqual(history.slice(1).map((r) => r.message), ['first', 'second', 'third', 'fourth']);
    assert.deepEqual(readdirSync(path.join(state, 'queue')), [], 'every ticket is gone');
  });
});

describe('a full disk', () => {
  // A small tmpfs, where this machine allows mounting one (root); else skipped, saying why.
  const canMount = (() => {
    if (process.getuid?.() !== 0) return 'mounting a small tmpfs needs root';
    const probe = tempDir('aion-mount-probe-');
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe.dir]).status === 0;
    if (ok) spawnSync('umount', [probe.dir]);
    probe.cleanup();
    return ok ? true : 'this machine does not allow mounting a tmpfs';
  })();

  test('a load that does not fit twice fails store before writing; the directory stays fully usable', { skip: canMount === true ? false : canMount }, async () => {
    const disk = tempDir('aion-fulldisk-');
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', disk.dir]).status, 0);
    try {
      const state = path.join(disk.dir, 'state');
      assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
      // ~1.8 MB of incompressible text: it fits once on the 3 MiB disk, not twice.
      const big = await packVariant('hello_v1', work.dir, 'big', (dir) => {
        let text = '';
        for (let i = 0; i < 40; i++) text += `// ${randomBytes(45_000).toString('base64')}\n`;
        writeFileSync(path.join(dir, 'modules', 'hello', 'padding.js'), text);
      });
      const r = aion(['--state-dir', state, 'load', big.path, '--json']);
      assert.equal(r.code, 10, r.stdout + r.stderr);
      assert.match(r.json.error.message, /not enough free space/);
      for (const args of [['versions'], ['history'], ['runs'], ['doctor']]) {
        const after = aion(['--state-dir', state, ...args, '--json']);
        assert.equal(after.code, 0, `${args[0]} after the refused load: ${after.stdout}${after.stderr}`);
      }
      assert.deepEqual(aion(['--state-dir', state, 'versions', '--json']).json.versions.map((v: { version: string }) => v.version), [v1.version]);
      assert.equal(aion(['--state-dir', state, 'start', 'hello', '--json']).code, 0, 'and writable');
    } finally {
      spawnSync('umount', [disk.dir]);
      disk.cleanup();
    }
  });
});
