// The code checks load makes of a package, for `aion pack` and `aion inspect`, which have no
// engine: every module compiled by a scratch registry (syntax errors, `import()`, invalid
// UTF-8), then the entry module evaluated and its exports checked in a workflow thread under
// load's own limits (time and memory). The same code gives the same refusal as `load`.
import { ModuleRegistry } from './registry.js';
import { CodePool, defaultLimits, type PoolLimits } from './pool.js';
import { verifyFailure, versionTexts } from './sandbox.js';

export interface CheckedManifest {
  entry_module: string;
  entry_function: string;
  activities: readonly string[];
}

/**
 * Throws AionError('invalid_package') naming the problem, with the message `load` gives, when
 * a module does not compile or an entry (one, or each of a list) does not verify. Registers nothing anywhere; the
 * thread it starts is stopped before it returns.
 */
export async function checkPackageCode(
  version: string,
  modules: ReadonlyMap<string, Uint8Array>,
  manifest: CheckedManifest | readonly CheckedManifest[],
  limits: Partial<PoolLimits> = {},
): Promise<void> {
  const registry = new ModuleRegistry();
  registry.register(version, modules);
  const pool = new CodePool(
    { ...defaultLimits(), ...limits },
    { names: (v) => [...(registry.modules(v)?.keys() ?? [])], source: (v, name) => registry.source(v, name) },
  );
  try {
    // Every workflow type's entry (a package with several types lists them all).
    for (const entry of Array.isArray(manifest) ? manifest : [manifest]) await verifyVersion(pool, registry, version, entry);
  } finally {
    await pool.close();
  }
}

/**
 * Verifies a registered version's entry in a workflow thread of `pool` (load, pack, inspect
 * alike). Throws AionError('invalid_package') naming the problem; AionError('not_found') for
 * a version the registry does not hold.
 */
export async function verifyVersion(pool: CodePool, registry: ModuleRegistry, version: string, manifest: CheckedManifest): Promise<void> {
  const problem = await pool.verify(version, versionTexts(registry, version), manifest.entry_module, manifest.entry_function, manifest.activities);
  if (problem !== '') throw verifyFailure(manifest.entry_module, manifest.entry_function, problem);
}
