// The README's "A deploy, step by step" block runs exactly as written, with `set -euo
// pipefail`, from a directory laid out like a fresh clone (bin/ and fixtures/ of this one).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/cli.js';

let work: { dir: string; cleanup: () => void };
before(() => {
  work = tempDir('aion-readme-');
  symlinkSync(path.join(ROOT, 'bin'), path.join(work.dir, 'bin'));
  symlinkSync(path.join(ROOT, 'fixtures'), path.join(work.dir, 'fixtures'));
});
after(() => work.cleanup());

/** The first ```sh block after a heading. */
function block(markdown: string, heading: string): string {
  const at = markdown.indexOf(heading);
  assert.ok(at >= 0, `README has '${heading}'`);
  const m = /```sh\n([\s\S]*?)```/.exec(markdown.slice(at));
  assert.ok(m, `a sh block follows '${heading}'`);
  return m[1]!;
}

describe('README walk-through', () => {
  test('"A deploy, step by step" runs as written and ends where it says', () => {
    const script = block(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), '## A deploy, step by step');
    assert.doesNotMatch(script, /3f2a9c1b|<version>/, 'no placeholder hashes');
    const env = { ...process.env };
    delete env.AION_STATE_DIR;
    delete env.FORCE_COLOR;
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: work.dir, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /refused, exit 4/);
    assert.match(r.stderr, /pinned by 1 holder: recoverable run order-42/);
    assert.match(r.stdout, /is drained/);
    assert.match(r.stdout, /kept: rollback target/);
    assert.match(r.stdout, /^unloaded approval /m);
    assert.match(r.stdout, /ramp 10%/);
  });
});
