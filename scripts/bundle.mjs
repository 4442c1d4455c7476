// Bundles bin/aion into one CommonJS file, dist/bundle/aion.cjs (run by `npm run build`
// after tsc), which bin/aion compiles with a V8 code cache stored beside it (aion.cache).
// Why: a cold `aion versions --json` spent more time loading ~90 separate modules (ours,
// commander, level's CommonJS tree) than Node spends starting; one file whose compiled code
// comes from the cache costs a small fraction of that. Code reached only through dynamic
// import() stays lazy: esbuild turns it into a function the first call runs.
// Left outside the bundle, as they are in dist/src and node_modules:
// - classic-level's native binding (node-gyp-build loads the .node file from its own dir);
// - the ink views (dist/src/cli/views), with ink, react and yoga: ES modules with top-level
//   await, loaded by real import() only by the commands that draw;
// - ajv, which only schema validation requires (a quarter of the bundle's bytes otherwise),
//   and pg, which only a PostgreSQL store requires;
// - the worker thread's entry: pool.ts's `new URL('./worker.js', import.meta.url)` resolves
//   to dist/bundle/worker.js, which imports dist/src/runtime/worker.js.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');

/** The external modules the bundle imports with import(): see the rewrite below. */
const dynamicExternals = new Set();

const externals = {
  name: 'aion-externals',
  setup(b) {
    // classic-level's `require('./binding')`: the installed package's file.
    b.onResolve({ filter: /^\.\/binding(\.js)?$/ }, (args) =>
      args.importer.includes(`${path.sep}classic-level${path.sep}`) ? { path: 'classic-level/binding.js', external: true } : undefined,
    );
    // The views: imported from dist/src as tsc built them (relative to dist/bundle/).
    b.onResolve({ filter: /\/views\/[a-z]+\.js$/ }, (args) => {
      const file = path.resolve(args.resolveDir, args.path);
      const relative = './' + path.relative(outdir, file).split(path.sep).join('/');
      dynamicExternals.add(relative);
      return { path: relative, external: true };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
// esbuild is a dev dependency: an install without them (--omit=dev) gets no bundle, and
// bin/aion runs dist/src as it is (slower to start, otherwise the same).
let build;
try {
  ({ build } = await import('esbuild'));
} catch (error) {
  process.stderr.write(`note: no bundle built (esbuild is not installed: ${error.message}); bin/aion will run dist/src\n`);
  process.exit(0);
}
mkdirSync(outdir, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/cli/main.js'],
  outfile: path.join(outdir, 'aion.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // ajv (with fast-uri, a quarter of the bundle) serves only commands that validate a schema:
  // loaded from node_modules by its import() when one does, never read at start-up.
  // pg likewise serves only --store postgres://.
  external: ['ink', 'react', 'react/*', 'yoga-layout', 'ajv', 'ajv/*', 'pg'],
  plugins: [externals],
  // bin/aion passes the bundle's own file URL (import.meta has no meaning in CommonJS).
  define: { 'import.meta.url': '__aionBundleUrl' },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
// bin/aion compiles the bundle with a code cache, and Node 20 loses a script's dynamic-import
// handler in functions that come from a cache: `import()` there fails ("A dynamic import
// callback was not specified"). So the bundle's import() of an external module calls
// __aionImport, an import() in bin/aion's own module, instead. Any other import() left in the
// bundle would fail the same way: the build refuses it.
const bundleFile = path.join(outdir, 'aion.cjs');
let code = readFileSync(bundleFile, 'utf8');
for (const specifier of dynamicExternals) code = code.replaceAll(`import(${JSON.stringify(specifier)})`, `__aionImport(${JSON.stringify(specifier)})`);
const left = code.match(/(?<![\w$.])import\(\s*["'`][^"'`]*["'`]\s*\)/g);
if (left) throw new Error(`the bundle has import() calls bin/aion cannot serve from a code cache: ${left.join(', ')}`);
writeFileSync(bundleFile, code);
writeFileSync(path.join(outdir, 'worker.js'), "// The worker thread's entry (see scripts/bundle.mjs).\nimport '../src/runtime/worker.js';\n");
writeFileSync(path.join(outdir, 'meta.json'), JSON.stringify(result.metafile));

// The code cache: bin/aion writes dist/bundle/aion.cache when a run finds none. One run of
// the path that matters most (a read command against a state directory) here, so the cache
// holds that path's compiled functions rather than those of whatever command runs first.
const warm = mkdtempSync(path.join(tmpdir(), 'aion-bundle-'));
try {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'aion'), '--state-dir', warm, 'versions', '--json'], { encoding: 'utf8', env: { ...process.env, AION_NO_BUNDLE: '' } });
  if (r.status !== 0) throw new Error(`the bundled aion failed its first run (exit ${r.status}): ${r.stderr || r.stdout}`);
} finally {
  rmSync(warm, { recursive: true, force: true });
}
