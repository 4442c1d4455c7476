// The module registry: every loaded package version's modules, compiled once per version.
//
// A module's source is compiled into a `vm.Script` exactly once, when its version is
// registered (the wrapper's body is pre-parsed then, and compiled by V8 on first use); every sandbox (one per replay, one per activity call) runs that same Script to
// instantiate the module's wrapper function in its own context. Compiling never happens per run.
// Deployed names are `<logical name>$<version>`. Host modules are provided by the engine itself,
// belong to no version and can never be unregistered.

import { createRequire } from 'node:module';
import vm from 'node:vm';
import { AionError } from '../errors.js';
import { isLogicalName } from './resolve.js';

/** Module names the engine itself provides; reserved for future use, never unregistered. */
export const HOST_MODULES: readonly string[] = Object.freeze(['aion']);

/** One registered module of one version. */
export interface CompiledModule {
  readonly name: string;
  readonly deployedName: string;
  readonly version: string;
  /** Evaluates to `function (exports, require, module) { <source> }` in any context. */
  readonly script: vm.Script;
  /** The module's source text (what code hosts in worker threads compile). */
  readonly source: string;
  readonly bytes: number;
}

export function deployedName(name: string, version: string): string {
  return `${name}$${version}`;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class ModuleRegistry {
  private readonly versions = new Map<string, Map<string, CompiledModule>>();
  private readonly deployed = new Map<string, CompiledModule>();
  private compiled = 0;

  /**
   * Registers a version's modules (logical name → UTF-8 source) and compiles each of them.
   * Returns the deployed names, ascending by logical name. Idempotent: modules already
   * registered for the version are kept as they are (same version = same content), missing
   * ones are added. All-or-nothing: throws AionError('invalid_package') naming the module on
   * an invalid name, invalid UTF-8 or a syntax error, and then registers nothing.
   */
  register(version: string, modules: ReadonlyMap<string, Uint8Array>): string[] {
    if (version.length === 0 || version.includes('$')) {
      throw new AionError('invalid_package', `invalid package version '${version}'`);
    }
    const existing = this.versions.get(version);
    const fresh: CompiledModule[] = [];
    for (const [name, bytes] of modules) {
      if (existing?.has(name)) continue;
      fresh.push(compileModule(name, version, bytes));
    }
    this.compiled += fresh.length;
    if (fresh.length > 0) {
      const table = existing ?? new Map<string, CompiledModule>();
      for (const module of fresh) {
        table.set(module.name, module);
        this.deployed.set(module.deployedName, module);
      }
      this.versions.set(version, table);
    }
    return this.deployedNames(version);
  }

  /** Whether any module of the version is registered. Never throws. */
  has(version: string): boolean {
    return this.versions.has(version);
  }

  /** Deployed names of the version's modules, ascending by logical name; [] when unknown. */
  deployedNames(version: string): string[] {
    const table = this.versions.get(version);
    if (table === undefined) return [];
    return [...table.keys()].sort(byteOrder).map((name) => deployedName(name, version));
  }

  /**
   * Removes one deployed module; returns whether it was registered (removing an unknown name
   * is a no-op, so a repeated unload is harmless). The version disappears with its last
   * module. Throws AionError('usage') for a host module, which can never be unregistered.
   */
  unregister(name: string): boolean {
    if (HOST_MODULES.includes(name)) {
      throw new AionError('usage', `host module '${name}' is provided by the engine and cannot be unregistered`);
    }
    const module = this.deployed.get(name);
    if (module === undefined) return false;
    this.deployed.delete(name);
    const table = this.versions.get(module.version);
    table?.delete(module.name);
    if (table !== undefined && table.size === 0) this.versions.delete(module.version);
    return true;
  }

  /** Unregisters every module of a version; returns the deployed names removed. Never throws. */
  unregisterVersion(version: string): string[] {
    const names = this.deployedNames(version);
    for (const name of names) this.unregister(name);
    return names;
  }

  /** Names of host modules the engine provides (never unregistered). */
  hostModules(): string[] {
    return [...HOST_MODULES];
  }

  /** The compiled modules of a version by logical name (undefined when not registered). */
  modules(version: string): ReadonlyMap<string, CompiledModule> | undefined {
    return this.versions.get(version);
  }

  /** Versions with at least one registered module. */
  registeredVersions(): string[] {
    return [...this.versions.keys()];
  }

  /** How many module sources this registry has compiled since it was created (a diagnostic). */
  get compileCount(): number {
    return this.compiled;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function compileModule(name: string, version: string, bytes: Uint8Array): CompiledModule {
  if (!isLogicalName(name)) {
    throw new AionError('invalid_package', `invalid module name '${name}': use [a-z0-9_] segments joined by '@'`, {
      details: { module: name },
    });
  }
  let source: string;
  try {
    source = decoder.decode(bytes);
  } catch {
    throw new AionError('invalid_package', `module '${name}' is not valid UTF-8`, { details: { module: name } });
  }
  const deployed = deployedName(name, version);
  // The source starts on the wrapper's first line, so line numbers in errors stay exact.
  // Not parenthesized: V8 compiles a parenthesized function eagerly, whereas this one is only
  // pre-parsed (every syntax error is still found here) and compiled on its first call, i.e.
  // when a run first requires the module. A large package costs a third of the time to load
  // and holds no bytecode for modules no run uses.
  const wrapped = `0, function (exports, require, module) {${source}\n}`;
  let script: vm.Script;
  try {
    script = new vm.Script(wrapped, { filename: deployed });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const line = error instanceof Error ? /:(\d+)\n/.exec(error.stack ?? '')?.[1] : undefined;
    throw new AionError(
      'invalid_package',
      `module '${name}' does not compile${line === undefined ? '' : ` (line ${line})`}: ${message}`,
      { details: { module: name }, cause: error },
    );
  }
  refuseImports(name, source);
  return { name, deployedName: deployed, version, script, source, bytes: bytes.byteLength };
}

type AcornNode = { type: string; start: number; [key: string]: unknown };
let acorn: { parse(source: string, options: object): AcornNode } | undefined;

/**
 * Refuses a module whose code contains `import(...)` or `import.meta`: a dynamic import is the
 * one construct that reaches the host's module loader from any context, so it is refused at
 * compile time, by a real parse (comments and strings that merely mention it are fine). A
 * source without the keyword cannot contain either (keywords cannot be escaped), so only those
 * that have it are parsed. Throws AionError('invalid_package') naming the module and line.
 */
function refuseImports(name: string, source: string): void {
  if (!source.includes('import')) return;
  acorn ??= createRequire(import.meta.url)('acorn') as typeof acorn;
  let ast: AcornNode;
  try {
    ast = acorn!.parse(`(function (exports, require, module) {${source}\n})`, { ecmaVersion: 'latest', sourceType: 'script', locations: true, allowHashBang: false });
  } catch {
    return; // V8 accepted it; acorn's grammar lags V8's on newest syntax: stay with V8's verdict.
  }
  const stack: unknown[] = [ast];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const child of node) stack.push(child);
      continue;
    }
    const n = node as AcornNode;
    if (n.type === 'ImportExpression' || (n.type === 'MetaProperty' && (n.meta as { name?: string } | undefined)?.name === 'import')) {
      const line = (n.loc as { start: { line: number } } | undefined)?.start.line;
      throw new AionError('invalid_package', `module '${name}' uses ${n.type === 'ImportExpression' ? 'import()' : 'import.meta'}${line === undefined ? '' : ` (line ${line})`}: workflow modules can only require sibling modules`, {
        details: { module: name },
      });
    }
    for (const key in n) {
      if (key === 'loc' || key === 'start' || key === 'end' || key === 'type') continue;
      const child = n[key];
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
}
