// The archive limit options of load and inspect (--max-archive-bytes, --max-inflated-bytes,
// --max-entries, and AION_MAX_* in the environment), through bin/aion: checked before anything
// is inflated, as the fixed limits are; a legitimately large package loads once they are
// raised. Through aion serve the limits travel with the load request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, tempDir } from '../helpers/cli.js';
import { writeLargeArchive } from '../helpers/bigzip.js';
import { buildPackage } from '../helpers/malformed.js';
import { startServe } from '../server/support.js';

let work: { dir: string; cleanup: () => void };
let small: string;

before(() => {
  work = tempDir('aion-limits-');
  small = path.join(work.dir, 'hello.aion');
  writeFileSync(small, buildPackage());
});
after(() => work.cleanup());

describe('archive limits', () => {
  test('a 300 MB archive is refused under the default limits and loads with raised ones', { timeout: 180_000 }, () => {
    const big = path.join(work.dir, 'big.aion');
    // Five stored data files of 60 MiB of random bytes (incompressible): 300 MiB and more.
    const size = writeLargeArchive(big, 5, 60 * 1024 * 1024);
    try {
      assert.ok(size > 300 * 1024 * 1024);
      const s = ['--state-dir', path.join(work.dir, 'big-state')];
      const refused = aion([...s, 'load', big, '--json']);
      assert.equal(refused.code, 6, refused.stderr);
      assert.equal(refused.json.error.code, 'invalid_package');
      assert.match(refused.json.error.message, /exceeds the limit of 268435456 bytes/);
      const inspectRefused = aion(['inspect', big, '--json']);
      assert.equal(inspectRefused.code, 6);
      assert.match(inspectRefused.json.error.message, /exceeds the limit of 268435456 bytes/);
      const none = aion([...s, 'versions', '--json']);
      assert.ok(none.code === 3 || (none.code === 0 && none.json.versions.length === 0), 'the refused load wrote nothing');

      const loaded = aion([...s, 'load', big, '--max-archive-bytes', '400M', '--json']);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.equal(loaded.json.workflow_type, 'hello');
      assert.equal(loaded.json.freshly_loaded, true);
      const listed = aion([...s, 'versions', '--json']);
      assert.deepEqual(listed.json.versions.map((v: any) => v.version), [loaded.json.version]);
      const run = aion([...s, 'start', 'hello', '--input', '{"name":"big"}', '--json']);
      assert.deepEqual([run.code, run.json.status], [0, 'completed'], run.stderr);
    } finally {
      rmSync(big, { force: true });
      rmSync(path.join(work.dir, 'big-state'), { recursive: true, force: true });
    }
  });

  test('each limit refuses, before inflating, an archive past it; the environment sets them too', () => {
    const s = ['--state-dir', path.join(work.dir, 'small-state')];
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--max-archive-bytes', '100'], {}, /exceeds the limit of 100 bytes/],
      [['--max-entries', '2'], {}, /more than 2 entries|3 entries|entries/],
      [['--max-inflated-bytes', '50'], {}, /50 bytes/],
      [[], { AION_MAX_ARCHIVE_BYTES: '100' }, /exceeds the limit of 100 bytes/],
      [[], { AION_MAX_ENTRIES: '1' }, /entries/],
    ];
    for (const [flags, env, message] of cases) {
      for (const command of ['load', 'inspect']) {
        const r = aion([...s, command, small, ...flags, '--json'], { env });
        assert.equal(r.code, 6, `${command} ${flags.join(' ')} ${JSON.stringify(env)}: ${r.stdout}${r.stderr}`);
        assert.equal(r.json.error.code, 'invalid_package');
        assert.match(r.json.error.message, message);
      }
    }
    const none = aion([...s, 'versions', '--json']);
    assert.ok(none.code === 3 || none.json.versions.length === 0, 'nothing was loaded');
    // The flag wins over the environment.
    const ok = aion([...s, 'load', small, '--max-archive-bytes', '1M', '--json'], { env: { AION_MAX_ARCHIVE_BYTES: '100' } });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('a malformed limit is a usage error, before any archive is opened', () => {
    for (const [flag, value] of [['--max-entries', '0'], ['--max-archive-bytes', '-5'], ['--max-inflated-bytes', '1.5G'], ['--max-entries', 'lots']]) {
      for (const command of ['load', 'inspect']) {
        const r = aion([command, path.join(work.dir, 'no-such.aion'), flag!, value!, '--json']);
        assert.equal(r.code, 2, `${command} ${flag} ${value}: ${r.stdout}`);
        assert.match(r.json.error.message, new RegExp(`${flag} must be a whole number`));
      }
    }
    const env = aion(['load', small, '--json'], { env: { AION_MAX_ENTRIES: 'many' } });
    assert.equal(env.code, 2);
    assert.match(env.json.error.message, /AION_MAX_ENTRIES must be a whole number/);
  });

  test('through aion serve the limits travel with the load request', async () => {
    const stateDir = path.join(work.dir, 'served');
    const served = await startServe(stateDir);
    try {
      const refused = aion(['--state-dir', stateDir, 'load', small, '--max-archive-bytes', '100', '--json']);
      assert.equal(refused.code, 6, refused.stderr);
      assert.match(refused.json.error.message, /exceeds the limit of 100 bytes/);
      const entries = aion(['--state-dir', stateDir, 'load', small, '--json'], { env: { AION_MAX_ENTRIES: '1' } });
      assert.equal(entries.code, 6, 'the caller\'s environment, not the server\'s');
      const loaded = aion(['--state-dir', stateDir, 'load', small, '--json']);
      assert.equal(loaded.code, 0, loaded.stderr);
    } finally {
      await served.stop();
    }
  });
});
