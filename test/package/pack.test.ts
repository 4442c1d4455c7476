// packProject and readProject: reproducible archives, versions that depend on modules only,
// output paths, and clear errors for broken projects.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packProject, readPackage } from '../../src/package/index.js';
import { isAionError, type ErrorCode } from '../../src/errors.js';
import { FIXTURES, tempDir } from '../helpers/cli.js';
import { locate } from '../helpers/malformed.js';

const FIXTURE_NAMES = ['hello_v1', 'hello_v2', 'approval', 'parent', 'order', 'sleeper', 'counter'];

/** Runs `fn` with a private copy of a fixture project. */
async function withProject(fixture: string, fn: (project: string, scratch: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const project = path.join(dir, 'project');
    cpSync(path.join(FIXTURES, fixture), project, { recursive: true });
    await fn(project, dir);
  } finally {
    cleanup();
  }
}

function editJson(file: string, edit: (value: Record<string, unknown>) => void): void {
  const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(value);
  writeFileSync(file, JSON.stringify(value, null, 2));
}

async function rejects(promise: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAionError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

describe('packProject', () => {
  for (const fixture of FIXTURE_NAMES) {
    test(`packs fixture ${fixture}`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const { path: out, pkg } = await packProject(path.join(FIXTURES, fixture), { out: path.join(dir, 'x.aion') });
        const config = JSON.parse(readFileSync(path.join(FIXTURES, fixture, 'workflow.json'), 'utf8'));
        assert.equal(pkg.manifest.workflow_type, config.entry_module);
        assert.deepEqual(pkg.manifest.activities, config.activities);
        assert.equal(readPackage(readFileSync(out)).version, pkg.version);
      } finally {
        cleanup();
      }
    });
  }

  test('is byte-for-byte reproducible', async () => {
    await withProject('hello_v1', async (project, scratch) => {
      const a = await packProject(project, { out: path.join(scratch, 'a.aion') });
      const b = await packProject(project, { out: path.join(scratch, 'b.aion') });
      assert.equal(a.pkg.version, b.pkg.version);
      assert.equal(Buffer.compare(readFileSync(a.path), readFileSync(b.path)), 0);
    });
  });

  test('lays out manifest.json, modules in name order, then src/', async () => {
    await withProject('hello_v1', async (project, scratch) => {
      const { path: out } = await packProject(project, { out: path.join(scratch, 'a.aion') });
      const bytes = readFileSync(out);
      const { entries } = locate(bytes);
      const names = entries.map((e) => e.name);
      // Local headers appear in the same order, back to back from offset 0.
      assert.equal(entries[0]!.local, 0);
      assert.deepEqual(entries.map((e) => e.local), [...entries.map((e) => e.local)].sort((a, b) => a - b));
      assert.deepEqual(names, ['manifest.json', 'modules/hello.js', 'modules/hello/util.js', 'src/README.md']);
    });
  });

  test('version ignores timeout, activities and src/, but not module bytes', async () => {
    await withProject('hello_v1', async (project, scratch) => {
      const base = await packProject(project, { out: path.join(scratch, '0.aion') });

      editJson(path.join(project, 'workflow.json'), (w) => {
        w.timeout_seconds = 3600;
        w.activities = ['notify'];
      });
      writeFileSync(path.join(project, 'src', 'README.md'), 'changed\n');
      writeFileSync(path.join(project, 'src', 'extra.txt'), 'more\n');
      const manifestOnly = await packProject(project, { out: path.join(scratch, '1.aion') });
      assert.equal(manifestOnly.pkg.version, base.pkg.version);
      assert.notEqual(manifestOnly.pkg.manifestDigest, base.pkg.manifestDigest);
      assert.notEqual(Buffer.compare(readFileSync(manifestOnly.path), readFileSync(base.path)), 0);
      assert.equal(manifestOnly.pkg.manifest.timeout_seconds, 3600);

      const util = path.join(project, 'modules', 'hello', 'util.js');
      const bytes = readFileSync(util);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
      writeFileSync(util, bytes);
      const moduleChanged = await packProject(project, { out: path.join(scratch, '2.aion') });
      assert.notEqual(moduleChanged.pkg.version, base.pkg.version);
    });
  });

  test('hello_v1 and hello_v2 are different versions of one type', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const v1 = await packProject(path.join(FIXTURES, 'hello_v1'), { out: path.join(dir, 'v1.aion') });
      const v2 = await packProject(path.join(FIXTURES, 'hello_v2'), { out: path.join(dir, 'v2.aion') });
      assert.equal(v1.pkg.manifest.workflow_type, v2.pkg.manifest.workflow_type);
      assert.notEqual(v1.pkg.version, v2.pkg.version);
    } finally {
      cleanup();
    }
  });

  test('default output is <entry_module>.aion in the project; workflow.json output overrides it', async () => {
    await withProject('order', async (project) => {
      const a = await packProject(project);
      assert.equal(a.path, path.join(project, 'order.aion'));
      assert.ok(existsSync(a.path));
      editJson(path.join(project, 'workflow.json'), (w) => void (w.output = 'build/order-pkg.aion'));
      const b = await packProject(project);
      assert.equal(b.path, path.join(project, 'build', 'order-pkg.aion'));
      assert.ok(existsSync(b.path));
      // Packing again over the existing archive must not pick it up or leave temp files.
      await packProject(project);
      assert.deepEqual(readdirSync(path.join(project, 'build')), ['order-pkg.aion']);
    });
  });

  test('--out is relative to the given cwd', async () => {
    await withProject('sleeper', async (project, scratch) => {
      const r = await packProject(project, { out: 'rel.aion', cwd: scratch });
      assert.equal(r.path, path.join(scratch, 'rel.aion'));
    });
  });

  test('refuses an output that escapes the project or lands in modules/ or src/', async () => {
    await withProject('sleeper', async (project) => {
      editJson(path.join(project, 'workflow.json'), (w) => void (w.output = '../escape.aion'));
      await rejects(packProject(project), 'invalid_package', /workflow\.json: field 'output' must stay inside the project directory/);
      editJson(path.join(project, 'workflow.json'), (w) => void (w.output = '/tmp/abs.aion'));
      await rejects(packProject(project), 'invalid_package', /field 'output' must be relative/);
      editJson(path.join(project, 'workflow.json'), (w) => void (w.output = 'src/me.aion'));
      await rejects(packProject(project), 'usage', /must not be inside the project's src\/ directory/);
    });
  });
});

describe('project errors', () => {
  test('missing project directory is usage', async () => {
    await rejects(packProject('/nonexistent/project'), 'usage', /no such project directory: \/nonexistent\/project/);
  });

  test('missing workflow.json is usage', async () => {
    const { dir, cleanup } = tempDir();
    try {
      await rejects(packProject(dir), 'usage', /no workflow\.json in project directory/);
    } finally {
      cleanup();
    }
  });

  const cases: [string, (project: string) => void, RegExp][] = [
    ['bad JSON', (p) => writeFileSync(path.join(p, 'workflow.json'), '{ nope'), /workflow\.json: not valid JSON/],
    ['unknown key', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.retries = 3)), /workflow\.json: unknown key "retries"/],
    ['missing key', (p) => editJson(path.join(p, 'workflow.json'), (w) => void delete w.activities), /workflow\.json: missing key 'activities'/],
    ['bad timeout', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.timeout_seconds = -5)), /workflow\.json: field 'timeout_seconds' must be an integer ≥ 1, got -5/],
    ['string timeout', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.timeout_seconds = '60')), /field 'timeout_seconds'/],
    ['duplicate activity', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.activities = ['charge', 'charge'])), /workflow\.json: field 'activities\[1\]' duplicates activity "charge"/],
    ['bad entry_module', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.entry_module = 'Order')), /workflow\.json: field 'entry_module' "Order" has an invalid character/],
    ['bad entry_function', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.entry_function = '1run')), /workflow\.json: field 'entry_function'/],
    ['entry module file missing', (p) => editJson(path.join(p, 'workflow.json'), (w) => void (w.entry_module = 'checkout')), /field 'entry_module' names "checkout", but modules\/checkout\.js does not exist/],
    ['non-js file under modules/', (p) => writeFileSync(path.join(p, 'modules', 'notes.md'), 'x'), /modules\/notes\.md: only \.js module files are allowed under modules\//],
    ['symlink under modules/', (p) => symlinkSync('/etc/hostname', path.join(p, 'modules', 'link.js')), /modules\/link\.js: symbolic links are not allowed/],
    ['symlink under src/', (p) => (mkdirSync(path.join(p, 'src')), symlinkSync('/etc/hostname', path.join(p, 'src', 'l'))), /src\/l: symbolic links are not allowed/],
    ['unsafe module name', (p) => writeFileSync(path.join(p, 'modules', 'a$b.js'), 'x'), /modules\/a\$b\.js: module name "a\$b" contains '\$'/],
    ['uppercase module name', (p) => writeFileSync(path.join(p, 'modules', 'Util.js'), 'x'), /modules\/Util\.js: module name "Util" has an invalid character "U"/],
    ['non-UTF-8 module', (p) => writeFileSync(path.join(p, 'modules', 'bad.js'), Buffer.from([0xc3, 0x28])), /entry "modules\/bad\.js": module text is not valid UTF-8/],
  ];
  for (const [name, breakIt, expect] of cases) {
    test(`${name} is invalid_package naming the file`, async () => {
      await withProject('order', async (project, scratch) => {
        breakIt(project);
        const out = path.join(scratch, 'never.aion');
        await rejects(packProject(project, { out }), 'invalid_package', expect);
        assert.ok(!existsSync(out), 'nothing is written for an invalid project');
      });
    });
  }

  test('missing modules/ directory', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(path.join(dir, 'workflow.json'), JSON.stringify({ entry_module: 'x', entry_function: 'run', timeout_seconds: 1, activities: [] }));
      await rejects(packProject(dir), 'invalid_package', /missing modules\/ directory/);
    } finally {
      cleanup();
    }
  });
});
