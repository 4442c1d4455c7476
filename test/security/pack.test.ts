// Attack 7: `aion pack` on a hostile project. workflow.json's `output` must not leave the
// project through a symbolic link (the old check was lexical only), workflow.json must be a
// regular file (a symlink was followed, a FIFO hung pack forever), and module files that are
// symlinks stay refused. Only an explicit --out may write outside the project.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { aion, BIN, ROOT, project, tempDir } from './support.js';

/** `aion pack <dir> --json` with a time bound (a FIFO used to block pack for ever). */
function pack(args: string[]): { code: number | null; json: any; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'pack', ...args, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { code: r.status, json, stderr: r.stderr };
}

function setOutput(dir: string, output: string): void {
  const file = path.join(dir, 'workflow.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), output }));
}

test("workflow.json 'output' through a symlinked directory is refused and writes nothing outside", () => {
  const { dir, cleanup } = tempDir('aion-security-pack-');
  try {
    const outside = path.join(dir, 'outside');
    mkdirSync(outside);
    const proj = project(dir);
    symlinkSync(outside, path.join(proj, 'build'));
    for (const output of ['build/hello.aion', 'build/new/deeper/hello.aion']) {
      setOutput(proj, output);
      const r = pack([proj]);
      assert.equal(r.code, 6, `${output}: ${r.stderr}`);
      assert.equal(r.json.error.code, 'invalid_package');
      assert.match(r.json.error.message, /'output'.*outside the project directory/);
      assert.deepEqual(readdirSync(outside), [], `${output}: pack wrote outside the project`);
    }
    // A symlinked project directory itself is fine: containment is checked on real paths.
    setOutput(proj, 'hello.aion');
    symlinkSync(proj, path.join(dir, 'alias'));
    const viaAlias = pack([path.join(dir, 'alias')]);
    assert.equal(viaAlias.code, 0, viaAlias.stderr);
    assert.ok(existsSync(path.join(proj, 'hello.aion')));
    // An explicit --out is the operator's choice, symlinks and all.
    const explicit = pack([proj, '--out', path.join(proj, 'build', 'x.aion')]);
    assert.equal(explicit.code, 0, explicit.stderr);
    assert.deepEqual(readdirSync(outside), ['x.aion']);
  } finally {
    cleanup();
  }
});

test('--out into modules/ through a symlink is still refused', () => {
  const { dir, cleanup } = tempDir('aion-security-pack-');
  try {
    const proj = project(dir);
    symlinkSync(path.join(proj, 'modules'), path.join(dir, 'mods'));
    const r = pack([proj, '--out', path.join(dir, 'mods', 'x.aion')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.json.error.message, /must not be inside the project's modules\/ directory/);
    assert.ok(!existsSync(path.join(proj, 'modules', 'x.aion')));
  } finally {
    cleanup();
  }
});

test('workflow.json that is a symlink, a FIFO or a directory is refused', () => {
  const { dir, cleanup } = tempDir('aion-security-pack-');
  try {
    const proj = project(dir);
    const real = path.join(dir, 'elsewhere.json');
    writeFileSync(real, readFileSync(path.join(proj, 'workflow.json')));
    const config = path.join(proj, 'workflow.json');
    const cases: [string, () => void, RegExp][] = [
      ['symlink', () => symlinkSync(real, config), /workflow\.json: symbolic links are not allowed/],
      ['fifo', () => assert.equal(spawnSync('mkfifo', [config]).status, 0), /workflow\.json: not a regular file/],
      ['directory', () => mkdirSync(config), /workflow\.json: not a regular file/],
    ];
    for (const [kind, make, message] of cases) {
      rmSync(config, { recursive: true, force: true });
      make();
      const r = pack([proj]);
      assert.equal(r.code, 6, `${kind}: exit ${r.code}, ${r.stderr}`);
      assert.equal(r.json.error.code, 'invalid_package', kind);
      assert.match(r.json.error.message, message, kind);
      assert.ok(!existsSync(path.join(proj, 'hello.aion')), `${kind}: an archive was written`);
    }
  } finally {
    cleanup();
  }
});

test('module files and module directories that are symlinks are refused', () => {
  const { dir, cleanup } = tempDir('aion-security-pack-');
  try {
    const secret = path.join(dir, 'secret.js');
    writeFileSync(secret, 'exports.secret = "do not ship";\n');
    const file = project(dir, 'hello_v1', 'file');
    rmSync(path.join(file, 'modules', 'hello', 'util.js'));
    symlinkSync(secret, path.join(file, 'modules', 'hello', 'util.js'));
    const linkedDir = project(dir, 'hello_v1', 'dir');
    rmSync(path.join(linkedDir, 'modules', 'hello'), { recursive: true });
    symlinkSync(dir, path.join(linkedDir, 'modules', 'hello'));
    const source = project(dir, 'hello_v1', 'src');
    mkdirSync(path.join(source, 'src'), { recursive: true });
    symlinkSync(secret, path.join(source, 'src', 'leak.js'));
    for (const proj of [file, linkedDir, source]) {
      const r = pack([proj]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.json.error.message, /symbolic links are not allowed/);
    }
    const noFile = aion(['pack', path.join(dir, 'missing')]);
    assert.equal(noFile.code, 2, 'a missing project directory stays a usage error');
  } finally {
    cleanup();
  }
});
