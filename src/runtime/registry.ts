// The module registry: every loaded package version's modules, checked once per version.
//
// A module is checked when its version is registered (or, for a version read from an archive
// entry by entry, as the archive is scanned: `checkModule`): a valid logical name, UTF-8 text,
// a syntax the wrapper compiles (V8 pre-parses it; every syntax error is found then) and no
// `import()` or `import.meta`. Its text is not kept as compiled code here: the code threads
// compile it on first require, asking for the source then (`source`), which a version
// registered from an archive reads from that archive when asked. Deployed names are
// `<logical name>$<version>`. Host modules are provided by the engine itself, belong to no
// version and can never be unregistered.

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
  readonly bytes: number;
}

/** Where a registered version's module texts come from when they are wanted (an archive). */
export interface ModuleTexts {
  /** A module's UTF-8 text, checked as it was at registration; throws when it cannot be read. */
  read(name: string): Uint8Array;
  /** Lets go of what it holds open; called once the version's last module is unregistered. */
  close?(): void;
}

export function deployedName(name: string, version: string): string {
  return `${name}$${version}`;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class ModuleRegistry {
  private readonly versions = new Map<string, Map<string, CompiledModule>>();
  private readonly deployed = new Map<string, CompiledModule>();
  /** Each version's texts: kept in memory (`register`) or read on demand (`registerChecked`). */
  private readonly texts = new Map<string, Map<string, string> | ModuleTexts>();
  private compiled = 0;

  /**
   * Registers a version's modules (logical name → UTF-8 source), checking each of them
   * (checkModule) and keeping their sources. Returns the deployed names, ascending by logical
   * name. Idempotent: modules already registered for the version are kept as they are (same
   * version = same content), missing ones are added. All-or-nothing: throws
   * AionError('invalid_package') naming the module on an invalid name, invalid UTF-8 or a
   * syntax error, and then registers nothing.
   */
  register(version: string, modules: ReadonlyMap<string, Uint8Array>): string[] {
    checkVersion(version);
    const existing = this.versions.get(version);
    const fresh: { module: CompiledModule; source: string }[] = [];
    for (const [name, bytes] of modules) {
      if (existing?.has(name)) continue;
      fresh.push({ module: { name, deployedName: deployedName(name, version), version, bytes: bytes.byteLength }, source: checkModule(name, bytes, version) });
    }
    this.compiled += fresh.length;
    if (fresh.length > 0) {
      const table = existing ?? new Map<string, CompiledModule>();
      let texts = this.texts.get(version);
      if (!(texts instanceof Map)) {
        // A version read from an archive gains in-memory modules: keep reading the others from it.
        const from = texts;
        const inMemory = new Map<string, string>();
        if (from) for (const name of table.keys()) inMemory.set(name, decoder.decode(from.read(name)));
        from?.close?.();
        texts = inMemory;
        this.texts.set(version, texts);
      }
      for (const { module, source } of fresh) {
        table.set(module.name, module);
        this.deployed.set(module.deployedName, module);
        texts.set(module.name, source);
      }
      this.versions.set(version, table);
    }
    return this.deployedNames(version);
  }

  /**
   * Registers a version whose modules were each checked already (checkModule, as its archive
   * was scanned), by name and byte size; their texts are read from `texts` when a code thread
   * asks for them. Returns the deployed names. A version already registered is kept as it is
   * (and `texts` closed).
   */
  registerChecked(version: string, sizes: ReadonlyMap<string, number>, texts: ModuleTexts): string[] {
    checkVersion(version);
    if (this.versions.has(version)) {
      texts.close?.();
      return this.deployedNames(version);
    }
    const table = new Map<string, CompiledModule>();
    for (const [name, bytes] of sizes) {
      const module: CompiledModule = { name, deployedName: deployedName(name, version), version, bytes };
      table.set(name, module);
      this.deployed.set(module.deployedName, module);
    }
    this.versions.set(version, table);
    this.texts.set(version, texts);
    return this.deployedNames(version);
  }

  /** A registered module's source text; undefined when unknown or no longer readable. */
  source(version: string, name: string): string | undefined {
    if (!this.versions.get(version)?.has(name)) return undefined;
    const texts = this.texts.get(version);
    if (texts instanceof Map) return texts.get(name);
    try {
      return texts === undefined ? undefined : decoder.decode(texts.read(name));
    } catch {
      return undefined;
    }
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
    const texts = this.texts.get(module.version);
    if (texts instanceof Map) texts.delete(module.name);
    if (table !== undefined && table.size === 0) {
      this.versions.delete(module.version);
      this.texts.delete(module.version);
      if (texts !== undefined && !(texts instanceof Map)) texts.close?.();
    }
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

  /** The registered modules of a version by logical name (undefined when not registered). */
  modules(version: string): ReadonlyMap<string, CompiledModule> | undefined {
    return this.versions.get(version);
  }

  /** Versions with at least one registered module. */
  registeredVersions(): string[] {
    return [...this.versions.keys()];
  }

  /** How many module sources `register` has checked since this registry was created (a diagnostic). */
  get compileCount(): number {
    return this.compiled;
  }
}

function checkVersion(version: string): void {
  if (version.length === 0 || version.includes('$')) {
    throw new AionError('invalid_package', `invalid package version '${version}'`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks one module as load does, keeping nothing: a valid logical name, UTF-8 text, a syntax
 * its wrapper compiles, and no `import()` or `import.meta`. Returns its source text. Throws
 * AionError('invalid_package') naming the module (and line).
 */
export function checkModule(name: string, bytes: Uint8Array, version = 'check'): string {
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
  // The source starts on the wrapper's first line, so line numbers in errors stay exact. The
  // module's function is returned, not called: V8 only pre-parses it (every syntax error is
  // still found here), which costs a third of a full compile. compileFunction, not vm.Script:
  // V8 keeps every vm.Script in its compilation cache, which would hold a whole package's text
  // for the life of the process. Nothing is kept: code threads compile the module themselves,
  // on first require.
  try {
    vm.compileFunction(`return function (exports, require, module) {${source}\n}`, [], { filename: deployedName(name, version) });
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
  return source;
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
