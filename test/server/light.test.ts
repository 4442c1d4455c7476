// The remote path of a command stays light: what a command loads to talk to `aion serve`
// (the remote client, the protocol, the holder file, errors) never imports the engine, the
// store's LevelDB layer or the runtime. Checked on the compiled static import graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/cli.js';

function staticImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gm)) found.push(m[1]!);
  for (const m of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) found.push(m[1]!);
  return found;
}

test('the remote client imports nothing heavy', () => {
  const start = path.join(ROOT, 'dist/src/client/remote.js');
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [start, path.join(ROOT, 'dist/src/client/client.js')];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
      else packages.add(spec);
    }
  }
  const local = [...seen].map((f) => path.relative(path.join(ROOT, 'dist/src'), f)).sort();
  for (const f of local) assert.ok(!/^(engine|runtime|catalog|package)\/|store\/(level|store|kv)\.js$/.test(f), `remote path imports ${f}`);
  for (const p of packages) assert.ok(p.startsWith('node:'), `remote path imports package ${p}`);
});
