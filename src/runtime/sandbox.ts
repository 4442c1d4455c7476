// Sandboxes: one fresh vm context per replay, per entry verification and per activity call.
//
// Each context is created with `microtaskMode: 'afterEvaluate'`: it owns its microtask queue,
// which V8 drains at the end of every `runInContext` call, inside that call's `timeout`. So the
// host never calls into the sandbox directly: it sets a job and runs the precompiled PUMP
// script, which calls back into the host to run the job, and the job calls the prelude's
// sandbox-side functions. Everything the job resolves runs (with all its continuations) before
// the step returns, and an infinite loop or an endless promise chain ends the step with a
// timeout instead of hanging the engine.

import { executionAsyncId } from 'node:async_hooks';
import vm from 'node:vm';
import { AionError } from '../errors.js';
import { PRELUDE_SOURCE, type HostBridge, type PreludeApi, type PreludeOptions } from './prelude.js';
import type { CompiledModule, ModuleRegistry } from './registry.js';
import { resolveSpecifier } from './resolve.js';

/** Default bound of one workflow activation step (start, or applying one event). */
export const DEFAULT_ACTIVATION_TIMEOUT_MS = 1000;
/** Default bound of evaluating the entry module at load. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 2000;

const PUMP = new vm.Script('__aion_pump__()', { filename: 'aion:pump' });
let preludeScript: vm.Script | undefined;

/** Thrown by Sandbox.step when the step ran out of time. */
export class StepTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`exceeded ${timeoutMs} ms`);
    this.name = 'StepTimeout';
  }
}

// ---- unhandled rejections inside sandboxes ------------------------------------------------------
// V8 reports promise rejections isolate-wide, so a rejected promise that workflow or activity
// code leaves unhandled would reach `process` and, under Node's default `throw` mode, kill the
// engine. The filter swallows rejections of sandbox promises only; any other unhandled
// rejection is rethrown (the default behaviour) when no other listener is installed.

const sandboxPromisePrototypes = new WeakSet<object>();
let rejectionFilterInstalled = false;

/**
 * Whether a promise was made inside one of the runtime's sandboxes. For a process-level
 * 'unhandledRejection' listener of the engine or CLI: with another listener installed, the
 * runtime's own filter no longer rethrows host rejections, but it still swallows sandbox ones;
 * such a listener should ignore promises for which this returns true. Never throws.
 */
export function isSandboxPromise(promise: unknown): boolean {
  if (typeof promise !== 'object' || promise === null) return false;
  const proto: unknown = Object.getPrototypeOf(promise);
  return typeof proto === 'object' && proto !== null && sandboxPromisePrototypes.has(proto);
}

function installRejectionFilter(): void {
  if (rejectionFilterInstalled) return;
  rejectionFilterInstalled = true;
  process.on('unhandledRejection', (reason, promise) => {
    if (isSandboxPromise(promise)) return;
    if (process.listenerCount('unhandledRejection') === 1) throw reason;
  });
}

// ---- the async-hooks stack after a timeout ------------------------------------------------------
// When async hooks are enabled (AsyncLocalStorage does that on Node 20, and so does the test
// runner), each promise job pushes an async context before it runs and pops it after. A
// timeout that terminates a sandbox's microtask drain skips the pop, and Node later aborts the
// whole process with "async hook stack has become corrupted". After a terminated step we pop
// the orphaned entries back to the async id the step started with. Node has no public API for
// this, so the legacy binding is used, only in that rare case, with its deprecation notice muted.

interface AsyncWrapBinding {
  popAsyncContext(asyncId: number): boolean;
}
let asyncWrap: AsyncWrapBinding | null | undefined;

function restoreAsyncContext(saved: number): void {
  if (executionAsyncId() === saved) return;
  if (asyncWrap === undefined) {
    const muted = process.noDeprecation;
    process.noDeprecation = true;
    try {
      const legacy = process as unknown as { binding(name: string): AsyncWrapBinding };
      asyncWrap = legacy.binding('async_wrap');
    } catch {
      asyncWrap = null;
    } finally {
      process.noDeprecation = muted;
    }
  }
  if (asyncWrap === null || typeof asyncWrap.popAsyncContext !== 'function') return;
  for (let i = 0; i < 100_000 && executionAsyncId() !== saved; i++) {
    if (!asyncWrap.popAsyncContext(executionAsyncId())) break;
  }
}

/** The host functions a sandbox's owner supplies; the rest have harmless defaults. */
export type BridgeHandlers = Partial<Omit<HostBridge, 'runJob' | 'resolve'>>;

/** A fresh context holding one version's modules (instantiated, not yet evaluated). */
export class Sandbox {
  readonly context: vm.Context;
  readonly api: PreludeApi;
  private job: (() => void) | undefined;

  /** Throws only on an internal failure (the prelude itself failing). */
  constructor(modules: ReadonlyMap<string, CompiledModule>, handlers: BridgeHandlers, options: PreludeOptions) {
    installRejectionFilter();
    // The global's host object has no prototype: over a plain `{}`, module code could climb
    // `globalThis.constructor.constructor` to the host's Function and reach `process`.
    this.context = vm.createContext(
      Object.create(null) as object,
      {
        name: `aion ${options.mode}`,
        microtaskMode: 'afterEvaluate',
        codeGeneration: { strings: true, wasm: false },
      },
    );
    sandboxPromisePrototypes.add(vm.runInContext('Promise.prototype', this.context) as object);
    const bridge: HostBridge = {
      runJob: () => {
        const job = this.job;
        this.job = undefined;
        job?.();
      },
      resolve: (from, spec) => {
        const resolution = resolveSpecifier(from, spec, (name) => modules.has(name));
        return resolution.ok ? resolution.name : `!${resolution.message}`;
      },
      command: handlers.command ?? (() => 0),
      settle: handlers.settle ?? (() => {}),
      log: handlers.log ?? (() => {}),
      setTimer: handlers.setTimer ?? (() => 0),
      clearTimer: handlers.clearTimer ?? (() => {}),
      activityDone: handlers.activityDone ?? (() => {}),
    };
    preludeScript ??= new vm.Script(PRELUDE_SOURCE, { filename: 'aion:prelude' });
    const init = preludeScript.runInContext(this.context) as (host: HostBridge, json: string) => PreludeApi;
    this.api = init(bridge, JSON.stringify(options));
    // Instantiating a wrapper runs no module code: each Script evaluates to a function.
    for (const module of modules.values()) {
      this.api.defineModule(module.name, module.script.runInContext(this.context));
    }
  }

  /**
   * Runs `job` inside the context and drains the context's microtasks, all within `timeoutMs`.
   * Throws StepTimeout when the bound is exceeded (the context must then be abandoned); any
   * other error thrown by the job propagates as it is.
   */
  step(job: () => void, timeoutMs: number): void {
    const bound = Math.max(1, Math.ceil(timeoutMs));
    this.job = job;
    const asyncId = executionAsyncId();
    try {
      PUMP.runInContext(this.context, { timeout: bound });
    } catch (error) {
      restoreAsyncContext(asyncId);
      if ((error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new StepTimeout(bound);
      throw error;
    } finally {
      this.job = undefined;
    }
  }
}

/** The compiled modules of a registered version; AionError('not_found') when it is not registered. */
export function versionModules(registry: ModuleRegistry, version: string): ReadonlyMap<string, CompiledModule> {
  const modules = registry.modules(version);
  if (modules === undefined) {
    throw new AionError('not_found', `package version ${version} is not registered`, { details: { version } });
  }
  return modules;
}

/**
 * Evaluates the entry module (and what it requires) in a fresh deterministic sandbox, bounded
 * by `timeoutMs` (sync code and microtasks), and checks its exports. Throws
 * AionError('invalid_package') naming the problem when the entry module is not in the version,
 * its evaluation throws (including a refused require or a missing global such as `process`),
 * it exceeds the bound, `exports[entryFunction]` is not a function, or a declared activity has
 * no function in `exports.activities`. Throws AionError('not_found') for an unregistered
 * version. Has no side effect on the registry.
 */
export function verifyEntry(
  registry: ModuleRegistry,
  version: string,
  entryModule: string,
  entryFunction: string,
  declaredActivities: readonly string[],
  opts: { timeoutMs?: number } = {},
): void {
  const modules = versionModules(registry, version);
  const fail = (message: string): never => {
    throw new AionError('invalid_package', message, {
      details: { module: entryModule, entry_function: entryFunction },
    });
  };
  if (!modules.has(entryModule)) fail(`entry module '${entryModule}' is not among the package's modules`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS;
  const sandbox = new Sandbox(modules, {}, { mode: 'workflow', seed: 1, now: 0, activities: null, info: null });
  let problem = '';
  try {
    sandbox.step(() => {
      problem = sandbox.api.verify(entryModule, entryFunction, JSON.stringify(declaredActivities));
    }, timeoutMs);
  } catch (error) {
    if (error instanceof StepTimeout) {
      fail(`evaluating entry module '${entryModule}' did not finish within ${error.timeoutMs} ms (infinite loop?)`);
    }
    fail(`evaluating entry module '${entryModule}' failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (problem !== '') fail(problem);
}
