// A corpus of malformed .aion archives, one per rejection the reader promises. Each is built
// with the package's own zip writer (assembleZip / deflateEntry) and, where the writer cannot
// express the fault, by patching bytes of a well-formed archive. `expect` matches the
// invalid_package message; `limits` are the (small) limits under which the case must fail.
import { contentHash } from '../../src/package/hash.js';
import type { PackageLimits } from '../../src/package/types.js';
import { assembleZip, crc32, deflateEntry, type RawZipEntry } from '../../src/package/zip.js';

export interface MalformedArchive {
  name: string;
  bytes: Uint8Array;
  expect: RegExp;
  limits?: Partial<PackageLimits>;
}

const enc = new TextEncoder();
const HELLO = 'const util = require("./hello/util");\nexports.run = async (ctx, input) => ({ greeting: "hello, " + util.who(input) });\n';
const UTIL = 'exports.who = (input) => (input && input.name) || "world";\n';

type ModuleSpec = [name: string, text: string | Uint8Array];
const DEFAULT_MODULES: ModuleSpec[] = [
  ['hello', HELLO],
  ['hello@util', UTIL],
];

interface Spec {
  modules?: ModuleSpec[];
  /** Edits the manifest object before it is serialized. */
  manifest?: (m: Record<string, unknown>) => void;
  /** Replaces manifest.json's text entirely. */
  manifestText?: string;
  omitManifest?: boolean;
  /** Extra entries appended after the modules. */
  extra?: RawZipEntry[];
  /** Edits the raw entries (manifest first, then modules, then extra) before assembly. */
  edit?: (entries: RawZipEntry[]) => void;
}

function bytesOf(text: string | Uint8Array): Uint8Array {
  return typeof text === 'string' ? enc.encode(text) : text;
}

/** The manifest a correct packer would write for `modules`. */
export function manifestFor(modules: ModuleSpec[]): Record<string, unknown> {
  const map = new Map(modules.map(([n, t]) => [n, bytesOf(t)]));
  const names = [...map.keys()].sort((a, b) => Buffer.compare(enc.encode(a), enc.encode(b)));
  return {
    format_version: 1,
    workflow_type: 'hello',
    entry_module: 'hello',
    entry_function: 'run',
    timeout_seconds: 60,
    activities: [],
    version: contentHash(map),
    modules: names.map((name) => ({ name, bytes: map.get(name)!.length })),
  };
}

export function entry(name: string | Uint8Array, data: string | Uint8Array, patch: Partial<RawZipEntry> = {}): RawZipEntry {
  const base = deflateEntry(typeof name === 'string' ? name : 'x', bytesOf(data));
  return { ...base, name, ...patch };
}

/** Builds an archive from a spec; with no spec, a valid `hello` package. */
export function buildPackage(spec: Spec = {}): Uint8Array {
  const modules = spec.modules ?? DEFAULT_MODULES;
  const manifest = manifestFor(modules);
  spec.manifest?.(manifest);
  const entries: RawZipEntry[] = [];
  if (!spec.omitManifest) entries.push(entry('manifest.json', spec.manifestText ?? JSON.stringify(manifest, null, 2)));
  for (const [name, text] of modules) entries.push(entry(`modules/${name.split('@').join('/')}.js`, text));
  entries.push(...(spec.extra ?? []));
  spec.edit?.(entries);
  return assembleZip(entries);
}

// --- byte surgery over archives laid out by assembleZip (no comment, no extra fields) --------

interface Located {
  name: string;
  central: number;
  local: number;
}

export function locate(bytes: Uint8Array): { entries: Located[]; eocd: number; cdOffset: number; cdSize: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = bytes.length - 22;
  const count = view.getUint16(eocd + 10, true);
  const cdSize = view.getUint32(eocd + 12, true);
  const cdOffset = view.getUint32(eocd + 16, true);
  const entries: Located[] = [];
  let pos = cdOffset;
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(pos + 28, true);
    const extraLength = view.getUint16(pos + 30, true);
    const name = Buffer.from(bytes.subarray(pos + 46, pos + 46 + nameLength)).toString('utf8');
    entries.push({ name, central: pos, local: view.getUint32(pos + 42, true) });
    pos += 46 + nameLength + extraLength;
  }
  return { entries, eocd, cdOffset, cdSize };
}

function patched(bytes: Uint8Array, fn: (view: DataView, where: ReturnType<typeof locate>) => void): Uint8Array {
  const copy = new Uint8Array(bytes);
  fn(new DataView(copy.buffer), locate(copy));
  return copy;
}

function find(where: ReturnType<typeof locate>, name: string): Located {
  const found = where.entries.find((e) => e.name === name);
  if (!found) throw new Error(`malformed corpus: no entry ${name}`);
  return found;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

// --- the corpus ----------------------------------------------------------------------------

export function malformedArchives(): MalformedArchive[] {
  const valid = buildPackage();
  const cases: MalformedArchive[] = [];
  const add = (name: string, bytes: Uint8Array, expect: RegExp, limits?: Partial<PackageLimits>) =>
    cases.push({ name, bytes, expect, ...(limits ? { limits } : {}) });

  // Container
  add('not-a-zip', enc.encode('this is a text file, not an archive\n'), /not a zip archive/);
  add('empty-file', new Uint8Array(0), /not a zip archive \(the file is empty\)/);
  add('truncated-half', valid.subarray(0, Math.floor(valid.length / 2)), /truncated zip archive/);
  add('truncated-end-record', valid.subarray(0, valid.length - 5), /truncated zip archive/);
  add('truncated-signature', valid.subarray(0, 3), /truncated zip archive/);
  add('trailing-garbage', concat(valid, enc.encode('JUNK')), /unexpected 4 bytes after the end of the zip archive/);
  add('zip64-end-record', patched(valid, (v, w) => v.setUint16(w.eocd + 10, 0xffff, true)), /ZIP64 archives are not supported/);
  add('multi-disk', patched(valid, (v, w) => v.setUint16(w.eocd + 4, 1, true)), /multi-disk/);
  add(
    'central-directory-out-of-range',
    patched(valid, (v, w) => v.setUint32(w.eocd + 16, w.cdOffset + 10, true)),
    /central directory lies outside the archive/,
  );
  add(
    'zip64-extra-field',
    buildPackage({ extra: [entry('src/a.txt', 'a', { centralExtra: new Uint8Array([1, 0, 0, 0]) })] }),
    /entry "src\/a\.txt": ZIP64 entries are not supported/,
  );
  add('encrypted-entry', buildPackage({ extra: [entry('src/a.txt', 'a', { flags: 0x0801 })] }), /entry "src\/a\.txt": encrypted entries are not supported/);
  add('data-descriptor', buildPackage({ extra: [entry('src/a.txt', 'a', { flags: 0x0808 })] }), /entry "src\/a\.txt": data descriptors/);
  add(
    'bad-compression-method',
    buildPackage({ extra: [entry('src/a.txt', 'a', { method: 99 })] }),
    /entry "src\/a\.txt": unsupported compression method 99/,
  );
  add(
    'symlink-entry',
    buildPackage({ extra: [entry('src/link', '/etc/passwd', { externalAttrs: (0o120777 << 16) >>> 0 })] }),
    /entry "src\/link": symbolic links are not allowed/,
  );
  add(
    'special-file-entry',
    buildPackage({ extra: [entry('src/fifo', '', { externalAttrs: (0o010644 << 16) >>> 0 })] }),
    /entry "src\/fifo": special file/,
  );
  add('directory-with-data', buildPackage({ extra: [entry('src/dir/', 'not empty at all')] }), /entry "src\/dir\/": directory entry has data/);
  add('entry-name-not-utf8', buildPackage({ extra: [entry(new Uint8Array([0x73, 0x72, 0x63, 0x2f, 0xff]), 'x')] }), /name is not valid UTF-8/);
  add(
    'local-header-crc-disagrees',
    patched(valid, (v, w) => {
      const e = find(w, 'modules/hello.js');
      v.setUint32(e.local + 14, v.getUint32(e.local + 14, true) ^ 1, true);
    }),
    /entry "modules\/hello\.js": local header CRC-32 0x[0-9a-f]+ disagrees with the central directory/,
  );
  add(
    'local-header-name-disagrees',
    patched(valid, (v, w) => {
      const e = find(w, 'modules/hello.js');
      v.setUint8(e.local + 30 + 8, 'j'.charCodeAt(0));
    }),
    /entry "modules\/hello\.js": local header name disagrees/,
  );
  add(
    'local-header-offset-out-of-range',
    patched(valid, (v, w) => v.setUint32(find(w, 'modules/hello.js').central + 42, w.cdOffset + 4, true)),
    /entry "modules\/hello\.js": local header offset \d+ is out of range/,
  );
  add(
    'no-local-header',
    patched(valid, (v, w) => v.setUint32(find(w, 'modules/hello.js').central + 42, 5, true)),
    /entry "modules\/hello\.js": no local header at offset 5/,
  );
  {
    // Two central entries sharing one local header: the second overlaps the first.
    const w = locate(valid);
    const e = find(w, 'modules/hello.js');
    const next = w.entries[w.entries.indexOf(e) + 1]!;
    const dup = valid.subarray(e.central, next.central);
    const cd = concat(valid.subarray(w.cdOffset, w.cdOffset + w.cdSize), dup);
    const end = new Uint8Array(valid.subarray(w.eocd));
    const ev = new DataView(end.buffer);
    ev.setUint16(8, w.entries.length + 1, true);
    ev.setUint16(10, w.entries.length + 1, true);
    ev.setUint32(12, cd.length, true);
    add('overlapping-entries', concat(valid.subarray(0, w.cdOffset), cd, end), /entry "modules\/hello\.js" overlaps entry "modules\/hello\.js"/);
  }

  // Data
  add(
    'crc-mismatch',
    buildPackage({ edit: (es) => void (es[1]!.crc32 = (es[1]!.crc32 ^ 0xff) >>> 0) }),
    /entry "modules\/hello\.js": CRC-32 mismatch/,
  );
  add(
    'lying-size-smaller',
    buildPackage({ edit: (es) => void (es[1]!.size -= 10) }),
    /entry "modules\/hello\.js": inflates to more than its declared \d+ bytes/,
  );
  add(
    'lying-size-larger',
    buildPackage({ edit: (es) => void (es[1]!.size += 10) }),
    /entry "modules\/hello\.js": inflates to \d+ bytes, but its header declares \d+/,
  );
  add(
    'corrupt-deflate-data',
    buildPackage({ extra: [entry('src/a.txt', 'aaaa', { data: new Uint8Array([0xff, 0xff, 0xff, 0xff]), compressedSize: 4 })] }),
    /entry "src\/a\.txt": corrupt deflate data/,
  );
  {
    const text = enc.encode('stored text');
    add(
      'stored-size-mismatch',
      buildPackage({ extra: [{ name: 'src/a.txt', method: 0, crc32: crc32(text), compressedSize: text.length, size: text.length + 1, data: text }] }),
      /entry "src\/a\.txt": stored entry declares 11 stored bytes but 12 bytes of content/,
    );
  }
  add(
    'zip-bomb-ratio',
    buildPackage({ extra: [entry('src/zeros.bin', new Uint8Array(4 * 1024 * 1024))] }),
    /entry "src\/zeros\.bin": compression ratio \d+:1 exceeds the limit of 100:1/,
  );

  // Limits
  add('limit-archive-bytes', valid, /archive is \d+ bytes, which exceeds the limit of 200 bytes/, { maxArchiveBytes: 200 });
  add('limit-entries', valid, /too many entries: 3 \(the limit is 2\)/, { maxEntries: 2 });
  add('limit-entry-bytes', valid, /entry "[^"]+": declared size \d+ bytes exceeds the per-entry limit of 40 bytes/, { maxEntryBytes: 40 });
  add('limit-total-inflated', valid, /total declared inflated size \d+ bytes exceeds the limit of 300 bytes/, { maxInflatedBytes: 300 });
  add('limit-manifest-bytes', valid, /manifest\.json: declared size \d+ bytes exceeds the manifest limit of 64 bytes/, { maxManifestBytes: 64 });
  add(
    'limit-ratio-small-floor',
    buildPackage({ extra: [entry('src/zeros.bin', new Uint8Array(2000))] }),
    /compression ratio \d+:1 exceeds the limit of 10:1/,
    { maxCompressionRatio: 10, ratioFloorBytes: 1000 },
  );
  {
    const many: RawZipEntry[] = [];
    for (let i = 0; i < 10_001 - 3; i++) many.push({ name: `src/f${i}`, method: 0, crc32: 0, compressedSize: 0, size: 0, data: new Uint8Array(0) });
    add('too-many-entries', buildPackage({ extra: many }), /too many entries: 10001 \(the limit is 10000\)/);
  }

  // Entry names
  add('missing-manifest', buildPackage({ omitManifest: true }), /missing manifest\.json/);
  add('path-traversal', buildPackage({ extra: [entry('src/../../etc/passwd', 'x')] }), /entry "src\/\.\.\/\.\.\/etc\/passwd" escapes the archive \('\.\.' path traversal\)/);
  add('path-traversal-modules', buildPackage({ extra: [entry('modules/../evil.js', 'x')] }), /path traversal/);
  add('absolute-path', buildPackage({ extra: [entry('/etc/passwd', 'x')] }), /entry "\/etc\/passwd" is an absolute path/);
  add('absolute-drive-path', buildPackage({ extra: [entry('C:/evil.js', 'x')] }), /entry "C:\/evil\.js" is an absolute path/);
  add('backslash-path', buildPackage({ extra: [entry('src\\evil.txt', 'x')] }), /contains a backslash/);
  add('control-character', buildPackage({ extra: [entry('src/a\u0001', 'x')] }), /contains a control character/);
  add('empty-path-segment', buildPackage({ extra: [entry('src//a', 'x')] }), /empty or '\.' path segment/);
  add('duplicate-entry', buildPackage({ extra: [entry('modules/hello.js', HELLO)] }), /duplicate entry "modules\/hello\.js"/);
  add('case-duplicate-entry', buildPackage({ extra: [entry('src/README', 'a'), entry('src/readme', 'b')] }), /entries "src\/README" and "src\/readme" differ only in case/);
  add('unexpected-entry', buildPackage({ extra: [entry('evil.sh', 'rm -rf /')] }), /unexpected entry "evil\.sh"/);
  add('non-js-module-entry', buildPackage({ extra: [entry('modules/notes.txt', 'x')] }), /entry "modules\/notes\.txt": only \.js module files/);
  add('file-inside-file', buildPackage({ extra: [entry('src/a', 'x'), entry('src/a/b', 'y')] }), /entry "src\/a\/b" lies inside file entry "src\/a"/);

  // Module names
  add('module-name-dollar', buildPackage({ extra: [entry('modules/hello$abc.js', 'x')] }), /module name "hello\$abc" contains '\$'/);
  add('module-name-dotdot', buildPackage({ extra: [entry('modules/a..b.js', 'x')] }), /module name "a\.\.b" contains '\.\.'/);
  add('module-name-empty-segment', buildPackage({ extra: [entry('modules/hello/.js', 'x')] }), /module name "hello@" has an empty segment/);
  add('module-name-uppercase', buildPackage({ extra: [entry('modules/Other.js', 'x')] }), /module name "Other" has an invalid character "O"/);
  add('module-name-at-in-path', buildPackage({ extra: [entry('modules/a@b.js', 'x')] }), /path segment "a@b" contains '@'/);
  add(
    'manifest-module-name-unsafe',
    buildPackage({ manifest: (m) => void ((m.modules as { name: string }[])[0]!.name = 'hello$x') }),
    /manifest\.json: field 'modules\[0\]\.name' "hello\$x" contains '\$'/,
  );

  // Module content and consistency
  add(
    'module-not-utf8',
    buildPackage({ modules: [['hello', new Uint8Array([0x65, 0x78, 0xff, 0xfe, 0x0a])]] }),
    /entry "modules\/hello\.js": module text is not valid UTF-8/,
  );
  add(
    'missing-entry-module',
    buildPackage({ modules: [['other', 'exports.run = async () => 1;\n']] }),
    /entry module "hello" \(modules\/hello\.js\) is missing from the archive/,
  );
  add(
    'module-size-mismatch',
    buildPackage({ manifest: (m) => void ((m.modules as { bytes: number }[])[1]!.bytes += 1) }),
    /module "hello@util": manifest\.json says \d+ bytes, entry 'modules\/hello\/util\.js' has \d+/,
  );
  add(
    'module-not-listed',
    buildPackage({ manifest: (m) => void (m.modules as unknown[]).pop() }),
    /entry 'modules\/hello\/util\.js' \(module "hello@util"\) is not listed in manifest\.json modules/,
  );
  add(
    'module-listed-but-absent',
    buildPackage({ manifest: (m) => void (m.modules as unknown[]).splice(1, 0, { name: 'hello@extra', bytes: 3 }) }),
    /manifest\.json lists module "hello@extra", but the archive has no entry 'modules\/hello\/extra\.js'/,
  );
  add('version-mismatch', buildPackage({ manifest: (m) => void (m.version = 'a'.repeat(64)) }), /manifest\.json version a{64} does not match the content hash/);

  // Manifest
  add('manifest-not-json', buildPackage({ manifestText: '{"format_version": 1,' }), /manifest\.json: not valid JSON/);
  add('manifest-not-utf8', buildPackage({ edit: (es) => (es[0] = entry('manifest.json', new Uint8Array([0x7b, 0xff, 0x7d]))) }), /manifest\.json: not valid UTF-8/);
  add('manifest-not-object', buildPackage({ manifestText: '[1, 2]' }), /manifest\.json: the top level must be a JSON object/);
  add('manifest-unknown-key', buildPackage({ manifest: (m) => void (m.extra = true) }), /manifest\.json: unknown key "extra"/);
  add('manifest-missing-key', buildPackage({ manifest: (m) => void delete m.timeout_seconds }), /manifest\.json: missing key 'timeout_seconds'/);
  add(
    'manifest-unsupported-format-version',
    buildPackage({ manifest: (m) => void (m.format_version = 2) }),
    /manifest\.json: unsupported format_version 2 \(this aion supports format_version 1\)/,
  );
  add('manifest-bad-timeout', buildPackage({ manifest: (m) => void (m.timeout_seconds = 0) }), /manifest\.json: field 'timeout_seconds' must be an integer ≥ 1, got 0/);
  add('manifest-timeout-over-a-day', buildPackage({ manifest: (m) => void (m.timeout_seconds = 86_401) }), /manifest\.json: field 'timeout_seconds' must be at most 86400 \(one day\), got 86401/);
  add('manifest-fractional-timeout', buildPackage({ manifest: (m) => void (m.timeout_seconds = 1.5) }), /field 'timeout_seconds' must be an integer/);
  add(
    'manifest-duplicate-activity',
    buildPackage({ manifest: (m) => void (m.activities = ['charge', 'charge']) }),
    /manifest\.json: field 'activities\[1\]' duplicates activity "charge"/,
  );
  add('manifest-empty-activity', buildPackage({ manifest: (m) => void (m.activities = ['']) }), /field 'activities\[0\]' must be a non-empty identifier/);
  add(
    'manifest-type-not-entry-module',
    buildPackage({ manifest: (m) => void (m.workflow_type = 'other') }),
    /manifest\.json: field 'workflow_type' must equal entry_module "hello"/,
  );
  add('manifest-bad-entry-function', buildPackage({ manifest: (m) => void (m.entry_function = 'run-it') }), /field 'entry_function' must be a JavaScript identifier/);
  add('manifest-bad-version', buildPackage({ manifest: (m) => void (m.version = 'ABC') }), /field 'version' must be 64 lowercase hex characters/);
  add(
    'manifest-modules-unsorted',
    buildPackage({ manifest: (m) => void (m.modules as unknown[]).reverse() }),
    /field 'modules\[1\]\.name' "hello" is out of order/,
  );
  add(
    'manifest-module-unknown-key',
    buildPackage({ manifest: (m) => void ((m.modules as Record<string, unknown>[])[0]!.sha = 'x') }),
    /unknown key "sha" in field 'modules\[0\]'/,
  );

  // Several workflow types (additional_workflows) and schemas
  const CHILD: ModuleSpec[] = [...DEFAULT_MODULES, ['hello@child', 'exports.run = async () => 1;\n']];
  const extra = (w: unknown) => (m: Record<string, unknown>) => void (m.additional_workflows = w);
  add('additional-not-array', buildPackage({ modules: CHILD, manifest: extra({ workflow_type: 'kid' }) }), /field 'additional_workflows' must be an array of workflow types/);
  add(
    'additional-duplicates-own-type',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'hello', entry_module: 'hello@child', entry_function: 'run' }]) }),
    /field 'additional_workflows\[0\]\.workflow_type' duplicates workflow type "hello" of this package/,
  );
  add(
    'additional-duplicate-types',
    buildPackage({
      modules: CHILD,
      manifest: extra([
        { workflow_type: 'kid', entry_module: 'hello@child', entry_function: 'run' },
        { workflow_type: 'kid', entry_module: 'hello', entry_function: 'run' },
      ]),
    }),
    /field 'additional_workflows\[1\]\.workflow_type' duplicates workflow type "kid"/,
  );
  add(
    'additional-bad-type-name',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'Kid', entry_module: 'hello@child', entry_function: 'run' }]) }),
    /field 'additional_workflows\[0\]\.workflow_type' "Kid"/,
  );
  add(
    'additional-entry-module-absent',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'kid', entry_module: 'hello@ghost', entry_function: 'run' }]) }),
    /additional_workflows\[0\] \("kid"\): entry module "hello@ghost" \(modules\/hello\/ghost\.js\) is missing from the archive/,
  );
  add(
    'additional-unknown-key',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'kid', entry_module: 'hello@child', entry_function: 'run', routed: true }]) }),
    /unknown key "routed" in field 'additional_workflows\[0\]'/,
  );
  add(
    'additional-missing-entry-function',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'kid', entry_module: 'hello@child' }]) }),
    /missing key 'entry_function' in field 'additional_workflows\[0\]'/,
  );
  add(
    'additional-internal-not-boolean',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'kid', entry_module: 'hello@child', entry_function: 'run', internal: 'yes' }]) }),
    /field 'additional_workflows\[0\]\.internal' must be true or false/,
  );
  add(
    'additional-timeout-over-a-day',
    buildPackage({ modules: CHILD, manifest: extra([{ workflow_type: 'kid', entry_module: 'hello@child', entry_function: 'run', timeout_seconds: 86_401 }]) }),
    /field 'additional_workflows\[0\]\.timeout_seconds' must be at most 86400/,
  );
  add('schema-not-object', buildPackage({ manifest: (m) => void (m.input_schema = 'string') }), /field 'input_schema' must be a JSON Schema \(an object, true or false\)/);
  let deep: unknown = {};
  for (let i = 0; i < 1100; i++) deep = { items: deep };
  // Compact text: indented, 1,100 levels would be a megabyte of spaces.
  add('schema-too-deep', buildPackage({ manifestText: JSON.stringify({ ...manifestFor(DEFAULT_MODULES), output_schema: deep }) }), /field 'output_schema' nests deeper than 1000 levels/);
  return cases;
}
