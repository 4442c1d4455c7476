// A generated corpus of hostile archives (≥ 500) for the reliability tests: every truncation
// of a small valid archive, seeded bit flips, the malformed corpus of malformed.ts (those that
// fail under the default limits), zip bombs by ratio and by count, path traversal, symbolic
// links, duplicate names, huge manifests, deeply nested JSON, wrong hashes, invalid UTF-8, and
// module code that throws, loops forever, or reaches for process / fs / the host at load.
// Every case must be refused by `load` with invalid_package; `category` groups the report.
import { contentHash } from '../../src/package/hash.js';
import { readPackage } from '../../src/package/read.js';
import { assembleZip, crc32, type RawZipEntry } from '../../src/package/zip.js';
import { buildPackage, entry, locate, malformedArchives, manifestFor } from './malformed.js';
import { rng } from './random.js';

export interface HostileArchive {
  name: string;
  category: string;
  bytes: Uint8Array;
}

const enc = new TextEncoder();
type Mods = [string, string | Uint8Array][];

/** A valid package of the given modules, with `entry` as its entry module. */
function pkg(modules: Mods, edit?: (m: Record<string, unknown>) => void): Uint8Array {
  return buildPackage({ modules, manifest: edit });
}

export interface HostileCorpus {
  cases: HostileArchive[];
  /** Bit flips the reader accepted: each decoded to the original package (an ignored field). */
  benignFlips: number;
}

export function hostileArchives(options: { flips?: number } = {}): HostileCorpus {
  const cases: HostileArchive[] = [];
  const add = (category: string, name: string, bytes: Uint8Array) => cases.push({ category, name: `${category}/${name}`, bytes });
  const valid = buildPackage();
  const original = readPackage(valid);

  // 1. Truncated at every offset.
  for (let n = 0; n < valid.length; n++) add('truncated', `at-${n}`, valid.subarray(0, n));

  // 2. Seeded single-bit flips; a flip the reader accepts must decode to the very same package.
  let benignFlips = 0;
  const rand = rng(0xa10);
  for (let i = 0; i < (options.flips ?? 300); i++) {
    const offset = Math.floor(rand() * valid.length);
    const bit = Math.floor(rand() * 8);
    const flipped = new Uint8Array(valid);
    flipped[offset]! ^= 1 << bit;
    let accepted: ReturnType<typeof readPackage> | undefined;
    try {
      accepted = readPackage(flipped);
    } catch {
      accepted = undefined;
    }
    if (accepted) {
      if (accepted.version !== original.version || accepted.manifestDigest !== original.manifestDigest) {
        throw new Error(`bit flip at ${offset}.${bit} was accepted as a different package`);
      }
      benignFlips++;
      continue;
    }
    add('bit-flip', `byte-${offset}-bit-${bit}`, flipped);
  }

  // 3. The malformed corpus (cases that need smaller limits are valid under the defaults).
  for (const m of malformedArchives()) if (!m.limits) add('malformed', m.name, m.bytes);

  // 4. Zip bombs by ratio and by count.
  for (const mb of [1, 8, 32]) add('bomb-ratio', `src-zeros-${mb}MiB`, buildPackage({ extra: [entry('src/zeros.bin', new Uint8Array(mb << 20))] }));
  add('bomb-ratio', 'module-8MiB-of-spaces', pkg([['hello', 'exports.run = async () => 1;' + ' '.repeat(8 << 20)]]));
  add('bomb-ratio', 'manifest-2MiB-whitespace', buildPackage({ manifestText: JSON.stringify(manifestFor([['hello', 'exports.run = async () => 1;']])) + ' '.repeat(2 << 20), modules: [['hello', 'exports.run = async () => 1;']] }));
  {
    // Declares 1000 bytes, inflates to 16 MiB.
    const big = entry('src/liar.bin', new Uint8Array(16 << 20));
    add('bomb-ratio', 'lying-declared-size', buildPackage({ extra: [{ ...big, size: 1000 }] }));
    // Nine entries each declaring 60 MiB (over 512 MiB in total).
    const many: RawZipEntry[] = [];
    for (let i = 0; i < 9; i++) many.push({ ...entry(`src/d${i}.bin`, 'x'), size: 60 << 20 });
    add('bomb-ratio', 'total-declared-540MiB', buildPackage({ extra: many }));
    add('bomb-ratio', 'one-entry-declares-4GiB', buildPackage({ extra: [{ ...entry('src/huge.bin', 'x'), size: 0xfffffffe }] }));
  }
  for (const count of [10_001, 20_000, 65_534]) {
    const extra: RawZipEntry[] = [];
    for (let i = 0; i < count - 3; i++) extra.push({ name: `src/f${i}`, method: 0, crc32: 0, compressedSize: 0, size: 0, data: new Uint8Array(0) });
    add('bomb-count', `${count}-entries`, buildPackage({ extra }));
  }
  {
    // 5000 central directory entries sharing one local header (an overlapping-file bomb).
    const w = locate(valid);
    const first = w.entries[1]!;
    const next = w.entries[2]!;
    const record = valid.subarray(first.central, next.central);
    const parts: Uint8Array[] = [valid.subarray(0, w.cdOffset), valid.subarray(w.cdOffset, w.cdOffset + w.cdSize)];
    for (let i = 0; i < 5000; i++) parts.push(record);
    const cdSize = w.cdSize + 5000 * record.length;
    const end = new Uint8Array(valid.subarray(w.eocd));
    const ev = new DataView(end.buffer);
    ev.setUint16(8, w.entries.length + 5000, true);
    ev.setUint16(10, w.entries.length + 5000, true);
    ev.setUint32(12, cdSize, true);
    parts.push(end);
    add('bomb-count', 'overlapping-5000', new Uint8Array(Buffer.concat(parts)));
  }

  // 5. Path traversal and unsafe names.
  const badNames = [
    '../x', '../../x', '..', 'src/..', 'src/../../../x', 'src/a/../../../x', 'modules/../../x.js', 'modules/hello/../../../x.js',
    './manifest.json', 'src/./a', '/abs', '/etc/passwd', '//server/share/x', 'C:/x', 'c:\\x', 'src\\..\\..\\x', 'src/a\u0000b',
    'src/a\u001b[31m', '../manifest.json', 'modules/./hello.js', 'src/a//b', 'src/', 'modules/../../../../tmp/evil.js',
  ];
  for (const [i, n] of badNames.entries()) add('path-traversal', `name-${i}`, buildPackage({ extra: [entry(n, 'x')] }));

  // 6. Symbolic links and special files, under every name that matters.
  for (const [i, mode] of [0o120777, 0o120644, 0o120000, 0o020644, 0o060644, 0o140755].entries()) {
    for (const target of ['src/link', 'src/deep/link', 'modules/hello/util.js', 'manifest.json']) {
      const host = i % 2 === 0 ? 3 : 19;
      const bytes = buildPackage({
        edit: (es) => {
          const at = es.findIndex((e) => e.name === target);
          const link = entry(target, '../../../../etc/passwd', { externalAttrs: (mode << 16) >>> 0, versionMadeBy: (host << 8) | 20 });
          if (at >= 0) es[at] = { ...es[at]!, externalAttrs: (mode << 16) >>> 0, versionMadeBy: (host << 8) | 20 };
          else es.push(link);
        },
      });
      add('symlink', `mode-${mode.toString(8)}-${target.replace(/\//g, '_')}`, bytes);
    }
  }

  // 7. Duplicate names.
  const HELLO = 'const util = require("./hello/util");\nexports.run = async (ctx, input) => ({ greeting: "hello, " + util.who(input) });\n';
  add('duplicate', 'manifest-twice-same', buildPackage({ edit: (es) => es.push(es[0]!) }));
  add('duplicate', 'manifest-twice-different', buildPackage({ edit: (es) => es.push(entry('manifest.json', '{}')) }));
  add('duplicate', 'module-twice-different', buildPackage({ extra: [entry('modules/hello.js', HELLO + '// other\n')] }));
  add('duplicate', 'util-twice', buildPackage({ extra: [entry('modules/hello/util.js', 'exports.who = () => "evil";\n')] }));
  add('duplicate', 'src-twice', buildPackage({ extra: [entry('src/a.txt', 'a'), entry('src/a.txt', 'b')] }));
  add('duplicate', 'case-twins-src', buildPackage({ extra: [entry('src/Read.me', 'a'), entry('src/read.ME', 'b')] }));
  add('duplicate', 'case-twins-manifest', buildPackage({ extra: [entry('MANIFEST.JSON', '{}')] }));
  add('duplicate', 'module-as-dir', buildPackage({ extra: [entry('modules/hello.js/x', 'x')] }));

  // 8. Huge manifests.
  const tiny: Mods = [['hello', 'exports.run = async () => 1;']];
  add('huge-manifest', 'padding-key-2MiB', pkg(tiny, (m) => void (m.padding = 'x'.repeat(2 << 20))));
  add('huge-manifest', 'entry-function-900KiB', pkg(tiny, (m) => void (m.entry_function = 'f'.repeat(900 << 10))));
  add('huge-manifest', 'activities-50000', pkg(tiny, (m) => void (m.activities = Array.from({ length: 50_000 }, (_, i) => `a${i}`))));
  add('huge-manifest', 'modules-listed-40000', pkg(tiny, (m) => void (m.modules = Array.from({ length: 40_000 }, (_, i) => ({ name: `m${String(i).padStart(6, '0')}`, bytes: 1 })))));
  add('huge-manifest', 'workflow-type-long', pkg(tiny, (m) => void (m.workflow_type = 'h'.repeat(100_000))));
  add('huge-manifest', 'entry-module-long', pkg(tiny, (m) => void (m.entry_module = 'h'.repeat(100_000))));

  // 9. Deeply nested JSON (the parser and validator must not overflow the stack).
  for (const depth of [1_000, 100_000, 400_000]) {
    add('deep-json', `array-${depth}`, buildPackage({ manifestText: '['.repeat(depth) + ']'.repeat(depth) }));
    add('deep-json', `object-${depth}`, buildPackage({ manifestText: '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) }));
  }
  for (const field of ['activities', 'modules', 'version', 'timeout_seconds', 'format_version', 'entry_function']) {
    for (const depth of [5_000, 100_000]) {
      // The field's value replaced by a nested array (written as text: JSON.stringify recurses).
      const m = manifestFor(tiny);
      const text = JSON.stringify({ ...m, [field]: 0 }).replace(`"${field}":0`, `"${field}":${'['.repeat(depth)}${']'.repeat(depth)}`);
      add('deep-json', `field-${field}-${depth}`, buildPackage({ modules: tiny, manifestText: text }));
    }
  }

  // 10. Wrong hashes.
  const real = contentHash(new Map(tiny.map(([n, t]) => [n, enc.encode(t as string)])));
  const wrongVersions: [string, string][] = [
    ['zeros', '0'.repeat(64)],
    ['last-digit', real.slice(0, 63) + (real[63] === '0' ? '1' : '0')],
    ['first-digit', (real[0] === '0' ? '1' : '0') + real.slice(1)],
    ['uppercase', real.toUpperCase()],
    ['short', real.slice(0, 63)],
    ['long', real + '0'],
    ['non-hex', real.slice(0, 63) + 'g'],
    ['sha-of-nothing', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['empty', ''],
    ['number', 42 as unknown as string],
    ['null', null as unknown as string],
  ];
  for (const [n, v] of wrongVersions) add('wrong-hash', n, pkg(tiny, (m) => void (m.version = v)));
  add('wrong-hash', 'version-of-other-modules', pkg(tiny, (m) => void (m.version = contentHash(new Map([['hello', enc.encode('exports.run = async () => 2;')]])))));
  add('wrong-hash', 'module-swapped-after-hashing', buildPackage({ modules: tiny, edit: (es) => (es[1] = entry('modules/hello.js', 'exports.run = async () => 2;')) }));
  add('wrong-hash', 'module-size-lie', pkg(tiny, (m) => void ((m.modules as { bytes: number }[])[0]!.bytes = 1)));
  add('wrong-hash', 'crc-of-other-data', buildPackage({ edit: (es) => void (es[1]!.crc32 = crc32(enc.encode('other'))) }));

  // 11. Invalid UTF-8 in modules, manifest and names.
  const badUtf8 = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xfe], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xef, 0xbb, 0xbf, 0xc3]];
  for (const [i, seq] of badUtf8.entries()) {
    const text = new Uint8Array([...enc.encode('exports.run = async () => "'), ...seq, ...enc.encode('";\n')]);
    add('utf8', `module-${i}`, pkg([['hello', text]]));
    add('utf8', `util-module-${i}`, pkg([['hello', 'const u = require("./hello/util"); exports.run = async () => 1;'], ['hello@util', text]]));
    const manifest = JSON.stringify(manifestFor(tiny));
    const at = manifest.indexOf('"run"') + 2;
    add('utf8', `manifest-${i}`, buildPackage({ modules: tiny, edit: (es) => (es[0] = entry('manifest.json', new Uint8Array([...enc.encode(manifest.slice(0, at)), ...seq, ...enc.encode(manifest.slice(at))]))) }));
    add('utf8', `name-${i}`, buildPackage({ extra: [entry(new Uint8Array([...enc.encode('src/'), ...seq]), 'x')] }));
  }

  // 12. Module code that misbehaves at load (each is a well-formed package; verification refuses it).
  const code: [string, string][] = [
    ['throws-error', 'throw new Error("boom at load");'],
    ['throws-number', 'throw 42;'],
    ['throws-null', 'throw null;'],
    ['throws-getter-object', 'throw { get message() { throw new Error("nested"); } };'],
    ['syntax-error', 'exports.run = async () => {'],
    ['loops-forever', 'for (;;) {}'],
    ['loops-in-microtasks', '(function f() { return Promise.resolve().then(f); })(); exports.run = async () => 1;'],
    ['loops-in-getter', 'Object.defineProperty(exports, "run", { get() { for (;;) {} } });'],
    ['process-exit', 'process.exit(0);'],
    ['process-kill', 'process.kill(process.pid, "SIGKILL");'],
    ['require-fs', 'const fs = require("fs"); fs.writeFileSync("/tmp/aion-pwned", "x"); exports.run = async () => 1;'],
    ['require-node-fs', 'require("node:fs"); exports.run = async () => 1;'],
    ['require-child-process', 'require("child_process").execSync("touch /tmp/aion-pwned"); exports.run = async () => 1;'],
    ['require-absolute', 'require("/etc/passwd"); exports.run = async () => 1;'],
    ['require-traversal', 'require("../../../../etc/passwd"); exports.run = async () => 1;'],
    ['require-missing-sibling', 'require("./nope"); exports.run = async () => 1;'],
    ['escape-global-constructor', 'globalThis.constructor.constructor("return process")().exit(3); exports.run = async () => 1;'],
    ['escape-this-constructor', '(function () { return this; })().constructor.constructor("return process")().exit(3); exports.run = async () => 1;'],
    ['escape-function-this', 'Function("return this")().constructor.constructor("return process")().exit(3); exports.run = async () => 1;'],
    ['escape-eval', 'eval("process").exit(3); exports.run = async () => 1;'],
    ['escape-new-function', 'new Function("return process")().exit(3); exports.run = async () => 1;'],
    ['escape-require-constructor', 'require.constructor("return process")().exit(3); exports.run = async () => 1;'],
    ['escape-error-constructor', 'try { null.x; } catch (e) { e.constructor.constructor("return process")().exit(3); } exports.run = async () => 1;'],
    ['reach-global-require', 'globalThis.require("fs"); exports.run = async () => 1;'],
    ['reach-module-require', 'module.require("fs"); exports.run = async () => 1;'],
    ['reach-buffer', 'Buffer.from("x"); exports.run = async () => 1;'],
    ['reach-settimeout', 'setTimeout(() => {}, 1); exports.run = async () => 1;'],
    ['reach-atomics-wait', 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); exports.run = async () => 1;'],
    ['reach-webassembly', 'new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); exports.run = async () => 1;'],
    ['allocates-then-throws', 'const s = "x".repeat(1 << 26); throw new Error("allocated " + s.length);'],
    ['entry-not-a-function', 'exports.run = 1;'],
    ['entry-missing', 'exports.other = async () => 1;'],
    ['exports-replaced-by-proxy', 'module.exports = new Proxy({}, { get() { throw new Error("trap"); } });'],
    ['pollutes-and-throws', 'Object.prototype.polluted = true; Array.prototype.push = null; throw new Error("x");'],
  ];
  for (const [n, src] of code) add('module-code', n, pkg([['hello', src]]));
  add('module-code', 'util-loops-forever', pkg([['hello', 'require("./hello/util"); exports.run = async () => 1;'], ['hello@util', 'while (true) {}']]));
  add('module-code', 'util-throws', pkg([['hello', 'require("./hello/util"); exports.run = async () => 1;'], ['hello@util', 'throw new Error("util");']]));
  add('module-code', 'require-cycle-throws', pkg([['hello', 'require("./hello/util"); exports.run = async () => 1;'], ['hello@util', 'require("../hello"); throw new Error("cycle");']]));
  add('module-code', 'declared-activity-missing', pkg([['hello', 'exports.run = async () => 1;']], (m) => void (m.activities = ['charge'])));
  add('module-code', 'activity-not-a-function', pkg([['hello', 'exports.run = async () => 1; exports.activities = { charge: 1 };']], (m) => void (m.activities = ['charge'])));
  return { cases, benignFlips };
}
