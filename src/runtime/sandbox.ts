// Entry verification and the runtime's shared bounds. Code runs in code hosts (host.ts): in a
// worker thread in the engine, in the calling thread here and in executor.ts.

import { AionError } from '../errors.js';
import { CodeHost } from './host.js';
import type { CompiledModule, ModuleRegistry } from './registry.js';
import type { VersionTexts } from './pool.js';

export { isSandboxPromise, StepTimeout } from './host.js';

/** Default bound of one workflow activation step (start, or applying one event). */
export const DEFAULT_ACTIVATION_TIMEOUT_MS = 1000;
/** Default bound of evaluating the entry module at load. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 2000;

/** The compiled modules of a registered version; AionError('not_found') when it is not registered. */
export function versionModules(registry: ModuleRegistry, version: string): ReadonlyMap<string, CompiledModule> {
  const modules = registry.modules(version);
  if (modules === undefined) {
    throw new AionError('not_found', `package version ${version} is not registered`, { details: { version } });
  }
  return modules;
}

/** A registered version's sources, all read at once, as an in-thread code host takes them (name, source). */
export function versionSources(registry: ModuleRegistry, version: string): [string, string][] {
  return [...versionModules(registry, version).values()].map((m) => [m.name, registry.source(version, m.name) ?? ''] as [string, string]);
}

/** A registered version's module names and a reader of each source, as code threads take them (on first require). */
export function versionTexts(registry: ModuleRegistry, version: string): VersionTexts {
  const names = [...versionModules(registry, version).keys()];
  return { names, source: (name) => registry.source(version, name) };
}

/** The refusal of a failed verification, naming the problem. */
export function verifyFailure(entryModule: string, entryFunction: string, problem: string): AionError {
  return new AionError('invalid_package', problem, { details: { module: entryModule, entry_function: entryFunction } });
}

/**
 * Evaluates the entry module (and what it requires) in a fresh deterministic context in this
 * thread, bounded by `timeoutMs`, and checks its exports. Throws AionError('invalid_package')
 * naming the problem when the entry module is not in the version, its evaluation throws
 * (including a refused require or a missing global such as `process`), it exceeds the bound,
 * `exports[entryFunction]` is not an own function, or a declared activity has no own function
 * in `exports.activities`. Throws AionError('not_found') for an unregistered version. The
 * engine verifies in a worker thread instead (pool.ts), with the same checks.
 */
export function verifyEntry(
  registry: ModuleRegistry,
  version: string,
  entryModule: string,
  entryFunction: string,
  declaredActivities: readonly string[],
  opts: { timeoutMs?: number } = {},
): void {
  const sources = versionSources(registry, version);
  const host = new CodeHost('workflow', { timeoutMs: opts.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS });
  host.addVersion(version, sources);
  const problem = host.verify(version, entryModule, entryFunction, declaredActivities);
  if (problem !== '') throw verifyFailure(entryModule, entryFunction, problem);
}
