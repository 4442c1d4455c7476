// Hostile state directories through bin/aion and in-process: paths that can never be created,
// stale holder files, copies of served directories, clock skew in the deploy history.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
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

  test('through bin/aion, with the clock of the rolling-back process an hour behind: a second rollback toggles back', () => {
    const state = path.join(work.dir, 'clock-skew-cli');
    // A preload that sets this process's clock back an hour (Date.now and new Date()).
    const skew = path.join(work.dir, 'skew.mjs');
    writeFileSync(
      skew,
      `const real = Date.now; const d = Number(process.env.AION_TEST_SKEW_MS);
const Real = Date;
class Skewed extends Real { constructor(...a) { if (a.length === 0) super(real() + d); else super(...a); } static now() { return real() + d; } }
globalThis.Date = Skewed;
`,
    );
    const behind = { NODE_OPTIONS: `--import ${pathToFileURL(skew).href}`, AION_TEST_SKEW_MS: String(-3_600_000) };
    assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
    assert.equal(aion(['--state-dir', state, 'load', v2.path]).code, 0);
    const back = aion(['--state-dir', state, 'rollback', 'hello', '--json'], { env: behind });
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.equal(back.json.version, v1.version);
    const history = aion(['--state-dir', state, 'history', 'hello', '--json']).json.history as { operation: string; version: string; at: string }[];
    assert.deepEqual(history.map((r) => r.operation), ['load', 'load', 'route'], 'the rollback is the newest record');
    assert.ok(Date.parse(history[2]!.at) < Date.parse(history[0]!.at), 'its time says the (skewed) clock');
    const again = aion(['--state-dir', state, 'rollback', 'hello', '--json']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(again.json.version, v2.version, 'the second rollback returns to v2');
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

describe('permissions of what aion writes', () => {
  test('in a pre-existing 0755 directory under umask 022: db/ and archives/ are 0700, every file 0600', () => {
    const state = path.join(work.dir, 'loose');
    mkdirSync(state);
    chmodSync(state, 0o755);
    const r = spawnSync('sh', ['-c', `umask 022 && exec "${process.execPath}" "${BIN}" --state-dir "${state}" load "${v1.path}"`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        const st = statSync(p);
        const rel = path.relative(state, p);
        found.push(rel);
        if (st.isDirectory()) {
          assert.equal((st.mode & 0o777).toString(8), '700', `${rel}/ is ${(st.mode & 0o777).toString(8)}`);
          walk(p);
        } else {
          assert.equal((st.mode & 0o777).toString(8), '600', `${rel} is ${(st.mode & 0o777).toString(8)}`);
        }
      }
    };
    walk(state);
    assert.ok(found.includes('db') && found.includes(path.join('archives', `${v1.version}.aion`)), found.join(', '));
    assert.equal((statSync(state).mode & 0o777).toString(8), '755', 'the directory the operator made is left as it was');
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
  if (canMount !== true) process.stdout.write(`# skipping the full-disk tests: ${canMount}\n`);

  /** Runs `fn` with a fresh tmpfs of `size` mounted at a temp dir; unmounts it whatever happens. */
  async function onSmallDisk(size: string, fn: (dir: string) => Promise<void>): Promise<void> {
    const disk = tempDir('aion-fulldisk-');
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk.dir]).status, 0);
    try {
      await fn(disk.dir);
    } finally {
      spawnSync('umount', [disk.dir]);
      disk.cleanup();
    }
  }

  /** A hello variant padded with `kb` KiB of incompressible text (the archive is about as big). */
  const padded = (tag: string, kb: number) =>
    packVariant('hello_v1', work.dir, tag, (dir) => {
      let text = '';
      for (let i = 0; i < kb / 60; i++) text += `// ${randomBytes(45_000).toString('base64')}\n`;
      writeFileSync(path.join(dir, 'modules', 'hello', 'padding.js'), text);
    });

  test('a load bigger than the free space fails store (exit 10), leaves nothing behind, and the directory stays fully usable', { skip: canMount === true ? false : canMount }, async () => {
    await onSmallDisk('2m', async (disk) => {
      const state = path.join(disk, 'state');
      assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
      assert.equal(aion(['--state-dir', state, 'start', 'hello', '--id', 'before', '--input', '{"name":"a"}']).code, 0);
      const big = await padded('big', 2400); // ~2.3 MB: more than the whole disk
      const r = aion(['--state-dir', state, 'load', big.path, '--json']);
      assert.equal(r.code, 10, r.stdout + r.stderr);
      assert.equal(r.json.error.code, 'store');
      assert.match(r.json.error.message, /not enough free space|no space left/);
      assert.deepEqual(readdirSync(path.join(state, 'archives')), [`${v1.version}.aion`], 'no archive file or temp file of the refused load');
      for (const args of [['versions'], ['history'], ['runs'], ['doctor']]) {
        const after = aion(['--state-dir', state, ...args, '--json']);
        assert.equal(after.code, 0, `${args[0]} after the refused load: ${after.stdout}${after.stderr}`);
      }
      assert.deepEqual(aion(['--state-dir', state, 'versions', '--json']).json.versions.map((v: { version: string }) => v.version), [v1.version]);
      assert.equal(aion(['--state-dir', state, 'runs', '--json']).json.runs.length, 1);
      const small = aion(['--state-dir', state, 'load', v2.path, '--json']);
      assert.equal(small.code, 0, `a small load afterwards: ${small.stdout}${small.stderr}`);
      assert.equal(aion(['--state-dir', state, 'start', 'hello', '--id', 'after', '--input', '{"name":"b"}']).code, 0, 'and runs start');
      assert.equal(aion(['--state-dir', state, 'doctor']).code, 0);
    });
  });

  test('an archive that fits once is loaded: it is written once, as a file, not into LevelDB\'s log and then a table', { skip: canMount === true ? false : canMount }, async () => {
    await onSmallDisk('3m', async (disk) => {
      const state = path.join(disk, 'state');
      assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
      const big = await padded('fits-once', 1800); // ~1.8 MB: fits once on 3 MiB, not twice
      const r = aion(['--state-dir', state, 'load', big.path, '--json']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      for (const args of [['versions'], ['history'], ['doctor']]) assert.equal(aion(['--state-dir', state, ...args]).code, 0, args[0]);
      assert.equal(aion(['--state-dir', state, 'start', 'hello', '--input', '{"name":"c"}']).code, 0);
    });
  });

  test('running out of space while the archive file is written: store, the temp file removed, nothing else changed', { skip: canMount === true ? false : canMount }, async () => {
    await onSmallDisk('2m', async (disk) => {
      const state = path.join(disk, 'state');
      assert.equal(aion(['--state-dir', state, 'load', v1.path]).code, 0);
      const big = await padded('no-room', 1200);
      // The room check passes (enough free space when the load starts); the disk fills up while
      // the archive is written, as when something else writes to the same filesystem.
      const { ArchiveFiles } = await import('../../src/store/archives.js');
      const files = new ArchiveFiles(state);
      const bytes = readFileSync(big.path);
      const st = statfsSync(disk);
      writeFileSync(path.join(disk, 'filler'), Buffer.alloc(Number(st.bavail) * Number(st.bsize) - (bytes.length >> 1)));
      await assert.rejects(files.write(big.version, { bytes }), (error: { code?: string; message?: string }) => {
        assert.equal(error.code, 'store');
        assert.match(error.message ?? '', /no space left to store the archive/);
        return true;
      });
      assert.deepEqual(readdirSync(path.join(state, 'archives')), [`${v1.version}.aion`], 'the temp file is gone');
      for (const args of [['versions'], ['history'], ['doctor']]) assert.equal(aion(['--state-dir', state, ...args]).code, 0, args[0]);
    });
  });
});
