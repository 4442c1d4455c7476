// The sandbox side of the wall. `prelude` is never called in the host: its source text
// (PRELUDE_SOURCE) is evaluated inside each fresh vm context, so every object it makes (the
// ctx object, promises, errors, cloned values, the module loader) belongs to that context's
// realm and every promise continuation lands on that context's own microtask queue.
//
// Only primitives cross the wall: the host hands in a bridge of host functions taking and
// returning strings and numbers, and values travel as JSON text that is parsed on the receiving
// side (so workflow code never holds a host object, and `instanceof Object` works in it).
//
// The function must stay self-contained: it may not reference anything outside its own body.

/** Host functions the sandbox calls. Arguments and results are primitives only. */
export interface HostBridge {
  /** Runs the host's current job; called by the pump script inside `runInContext`. */
  runJob(): void;
  /** Resolves a require: the logical name, or `!` followed by a refusal message. */
  resolve(from: string, spec: string): string;
  /** Records a workflow command; returns its seq (per kind, from 1). */
  command(kind: string, name: string, inputJson: string, workflowId: string): number;
  /** Reports the workflow's outcome: completed (result JSON), failed (ErrorInfo JSON), continued_as_new (input JSON). */
  settle(status: string, json: string): void;
  /** Console output of activities. */
  log(level: string, text: string): void;
  /** Activity timers: schedules a host timer and returns its id. */
  setTimer(ms: number): number;
  clearTimer(id: number): void;
  /** Reports an activity's outcome: result JSON, or ErrorInfo JSON when !ok. */
  activityDone(ok: boolean, json: string): void;
}

/** Sandbox functions the host calls, always from inside a pump step. */
export interface PreludeApi {
  defineModule(name: string, wrapper: unknown): void;
  setNow(ms: number): void;
  start(entry: string, entryFunction: string, inputJson: string): void;
  resolvePending(kind: string, seq: number, json: string): void;
  rejectPending(kind: string, seq: number, message: string, name: string): void;
  signal(name: string, json: string): void;
  /** '' when the entry is fine, else a message naming the problem. */
  verify(entry: string, entryFunction: string, activitiesJson: string): string;
  callActivity(entry: string, name: string, inputJson: string): void;
  fireTimer(id: number): void;
}

export interface PreludeOptions {
  mode: 'workflow' | 'activity';
  /** PRNG seed (workflow mode). */
  seed: number;
  /** Initial replay time in ms (workflow mode). */
  now: number;
  /** Declared activity names; null = unchecked. */
  activities: string[] | null;
  info: { workflowId: string; runId: string; workflowType: string; version: string } | null;
}

export function prelude(host: HostBridge, optionsJson: string): PreludeApi {
  'use strict';
  const G: any = globalThis;
  const JSONparse = JSON.parse;
  const JSONstringify = JSON.stringify;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const freeze = Object.freeze;
  const SPromise: PromiseConstructor = G.Promise;
  const SError: ErrorConstructor = G.Error;
  const STypeError: TypeErrorConstructor = G.TypeError;
  const SRangeError: RangeErrorConstructor = G.RangeError;
  const SMap: MapConstructor = G.Map;
  const options: PreludeOptions = JSONparse(optionsJson);
  const workflowMode = options.mode === 'workflow';

  const hidden = (name: string, value: unknown): void => {
    defineProperty(G, name, { value, writable: false, enumerable: false, configurable: false });
  };
  const replace = (name: string, value: unknown): void => {
    defineProperty(G, name, { value, writable: true, enumerable: false, configurable: true });
  };

  hidden('__aion_pump__', function __aion_pump__() {
    host.runJob();
  });

  const describe = (error: unknown): string => {
    try {
      if (error !== null && typeof error === 'object' && 'message' in error) {
        const name = String((error as { name?: unknown }).name ?? 'Error');
        return `${name}: ${String((error as { message: unknown }).message)}`;
      }
      return String(error);
    } catch {
      return 'an unprintable value';
    }
  };
  const errorInfoJson = (error: unknown): string => {
    try {
      if (error !== null && typeof error === 'object' && 'message' in error) {
        const name = (error as { name?: unknown }).name;
        return JSONstringify({
          message: String((error as { message: unknown }).message),
          name: typeof name === 'string' && name !== '' ? name : 'Error',
        });
      }
      return JSONstringify({ message: `non-error thrown: ${String(error)}`, name: 'Error' });
    } catch {
      return JSONstringify({ message: 'an unprintable value was thrown', name: 'Error' });
    }
  };
  /** JSON text of a value crossing the wall; undefined becomes null. Throws when not JSON. */
  const toJson = (value: unknown): string => {
    if (value === undefined) return 'null';
    const text = JSONstringify(value);
    if (typeof text !== 'string') throw new STypeError(`a value of type ${typeof value} is not JSON`);
    return text;
  };
  const makeError = (message: string, name: string): Error => {
    const error = new SError(message);
    if (name !== '' && name !== 'Error') error.name = name;
    return error;
  };

  // ---- globals: no Node APIs ever; determinism in workflow mode --------------------------------

  const consoleObject: Record<string, unknown> = {};
  for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir']) {
    consoleObject[level] = workflowMode
      ? function () {}
      : function (...args: unknown[]) {
          const parts: string[] = [];
          for (const arg of args) {
            if (typeof arg === 'string') parts.push(arg);
            else {
              let text: string | undefined;
              try {
                text = typeof arg === 'object' && arg !== null ? JSONstringify(arg) : String(arg);
              } catch {
                text = undefined;
              }
              parts.push(text ?? describe(arg));
            }
          }
          host.log(level, parts.join(' '));
        };
  }
  replace('console', freeze(consoleObject));
  replace('queueMicrotask', function queueMicrotask(callback: () => void) {
    if (typeof callback !== 'function') throw new STypeError('queueMicrotask needs a function');
    SPromise.resolve().then(() => callback());
  });

  let now = options.now;
  let random: () => number = Math.random;
  let timerFire: ((id: number) => void) | undefined;

  if (workflowMode) {
    for (const name of ['WeakRef', 'FinalizationRegistry', 'WebAssembly', 'SharedArrayBuffer', 'Atomics']) {
      delete G[name];
    }
    // mulberry32: small, fast and fully determined by the seed.
    let state = options.seed >>> 0;
    random = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    G.Math.random = random;

    const RealDate: DateConstructor = G.Date;
    const DeterministicDate = function Date(this: unknown, ...args: unknown[]): unknown {
      if (new.target === undefined) return new RealDate(now).toString();
      return construct(RealDate, args.length === 0 ? [now] : args, new.target);
    } as unknown as DateConstructor;
    defineProperty(DeterministicDate, 'prototype', { value: RealDate.prototype, writable: false });
    defineProperty(DeterministicDate, 'now', { value: () => now, writable: true, configurable: true });
    defineProperty(DeterministicDate, 'parse', { value: RealDate.parse, writable: true, configurable: true });
    defineProperty(DeterministicDate, 'UTC', { value: RealDate.UTC, writable: true, configurable: true });
    defineProperty(RealDate.prototype, 'constructor', { value: DeterministicDate, writable: true, configurable: true });
    replace('Date', DeterministicDate);

    // Intl's date formatting reads the real clock when given no date: give it the replay time.
    const dtf = G.Intl?.DateTimeFormat?.prototype as Intl.DateTimeFormat | undefined;
    if (dtf) {
      const formatGetter = getOwnPropertyDescriptor(dtf, 'format')?.get;
      if (formatGetter) {
        defineProperty(dtf, 'format', {
          configurable: true,
          get(this: Intl.DateTimeFormat) {
            const format = apply(formatGetter, this, []) as (date?: unknown) => string;
            return (date?: unknown) => format(date === undefined ? now : date);
          },
        });
      }
      const formatToParts = dtf.formatToParts;
      defineProperty(dtf, 'formatToParts', {
        configurable: true,
        writable: true,
        value: function formatToParts_(this: Intl.DateTimeFormat, date?: unknown) {
          return apply(formatToParts, this, [date === undefined ? now : date]);
        },
      });
    }
  } else {
    const callbacks = new SMap<number, { fn: (...args: unknown[]) => unknown; args: unknown[] }>();
    replace('setTimeout', function setTimeout(fn: unknown, ms?: unknown, ...args: unknown[]) {
      if (typeof fn !== 'function') throw new STypeError('setTimeout needs a function');
      const delay = typeof ms === 'number' && ms > 0 ? ms : 0;
      const id = host.setTimer(delay);
      callbacks.set(id, { fn: fn as (...a: unknown[]) => unknown, args });
      return id;
    });
    replace('clearTimeout', function clearTimeout(id: unknown) {
      if (typeof id === 'number' && callbacks.delete(id)) host.clearTimer(id);
    });
    timerFire = (id: number): void => {
      const entry = callbacks.get(id);
      if (entry === undefined) return;
      callbacks.delete(id);
      try {
        apply(entry.fn, undefined, entry.args);
      } catch (error) {
        host.activityDone(false, errorInfoJson(error));
      }
    };
  }

  // ---- modules ---------------------------------------------------------------------------------

  const wrappers = new SMap<string, (...args: unknown[]) => unknown>();
  const instances = new SMap<string, { exports: any; id: string }>();

  const load = (name: string): any => {
    const cached = instances.get(name);
    if (cached !== undefined) return cached.exports;
    const wrapper = wrappers.get(name);
    if (wrapper === undefined) throw new SError(`no module '${name}' in this package version`);
    const module = { exports: {} as any, id: name };
    instances.set(name, module);
    const require = function require(spec: unknown): unknown {
      const resolved = host.resolve(name, String(spec));
      if (resolved.charAt(0) === '!') throw new SError(resolved.slice(1));
      return load(resolved);
    };
    try {
      apply(wrapper, module.exports, [module.exports, require, module]);
    } catch (error) {
      instances.delete(name);
      throw error;
    }
    return module.exports;
  };

  // ---- the workflow context --------------------------------------------------------------------

  type Settlers = { resolve: (value: unknown) => void; reject: (error: unknown) => void };
  const pending = new SMap<string, Settlers>();
  const signalWaiters = new SMap<string, Array<(value: unknown) => void>>();
  const signalBuffer = new SMap<string, string[]>();
  const declared = options.activities;
  let finished = false;

  const never = (): Promise<never> => new SPromise<never>(() => {});
  const issue = (kind: string, name: string, input: unknown, workflowId: string, what: string): Promise<unknown> => {
    if (finished) return never();
    let inputJson: string;
    try {
      inputJson = toJson(input);
    } catch (error) {
      return SPromise.reject(new STypeError(`${what} input is not JSON-serializable: ${describe(error)}`));
    }
    const seq = host.command(kind, name, inputJson, workflowId);
    return new SPromise((resolve, reject) => {
      pending.set(`${kind}#${seq}`, { resolve, reject });
    });
  };

  const continueSentinel = new SError('workflow continued as new');
  continueSentinel.name = 'ContinueAsNew';

  const info = freeze({ ...(options.info ?? { workflowId: '', runId: '', workflowType: '', version: '' }) });
  const ctx = freeze({
    info,
    activity(name: unknown, input?: unknown): Promise<unknown> {
      if (typeof name !== 'string') return SPromise.reject(new STypeError('ctx.activity(name, input) needs a string name'));
      if (declared !== null && !declared.includes(name)) {
        const list = declared.length === 0 ? 'none' : declared.join(', ');
        return SPromise.reject(new SError(`activity '${name}' is not declared in the manifest (declared: ${list})`));
      }
      return issue('activity', name, input, '', `activity '${name}'`);
    },
    sleep(seconds: unknown): Promise<unknown> {
      if (typeof seconds !== 'number' || !(seconds > 0) || seconds === Infinity) {
        return SPromise.reject(new SRangeError(`ctx.sleep(seconds) needs a positive number of seconds, got ${String(seconds)}`));
      }
      return issue('timer', '', seconds, '', 'timer').then(() => undefined);
    },
    signal(name: unknown): Promise<unknown> {
      if (typeof name !== 'string') return SPromise.reject(new STypeError('ctx.signal(name) needs a string name'));
      if (finished) return never();
      const buffered = signalBuffer.get(name);
      if (buffered !== undefined && buffered.length > 0) return SPromise.resolve(JSONparse(buffered.shift() as string));
      return new SPromise((resolve) => {
        const waiters = signalWaiters.get(name) ?? [];
        waiters.push(resolve);
        signalWaiters.set(name, waiters);
      });
    },
    child(workflowType: unknown, input?: unknown, childOptions?: unknown): Promise<unknown> {
      if (typeof workflowType !== 'string' || workflowType === '') {
        return SPromise.reject(new STypeError('ctx.child(workflow_type, input, options) needs a workflow type'));
      }
      let workflowId = '';
      if (childOptions !== undefined && childOptions !== null) {
        const id = (childOptions as { workflowId?: unknown }).workflowId;
        if (id !== undefined && (typeof id !== 'string' || id === '')) {
          return SPromise.reject(new STypeError('ctx.child options.workflowId must be a non-empty string'));
        }
        workflowId = id ?? '';
      }
      return issue('child', workflowType, input, workflowId, `child '${workflowType}'`);
    },
    continueAsNew(input?: unknown): never {
      if (!finished) {
        let inputJson: string;
        try {
          inputJson = toJson(input);
        } catch (error) {
          throw new STypeError(`ctx.continueAsNew input is not JSON-serializable: ${describe(error)}`);
        }
        finished = true;
        host.settle('continued_as_new', inputJson);
      }
      throw continueSentinel;
    },
    now(): number {
      return now;
    },
    random(): number {
      return random();
    },
  });

  const settleResolved = (value: unknown): void => {
    if (finished) return;
    finished = true;
    let json: string;
    try {
      json = toJson(value);
    } catch (error) {
      host.settle('failed', JSONstringify({ message: `workflow result is not JSON-serializable: ${describe(error)}`, name: 'TypeError' }));
      return;
    }
    host.settle('completed', json);
  };
  const settleRejected = (error: unknown): void => {
    if (finished) return;
    finished = true;
    host.settle('failed', errorInfoJson(error));
  };

  return freeze({
    defineModule(name: string, wrapper: unknown): void {
      wrappers.set(name, wrapper as (...args: unknown[]) => unknown);
    },
    setNow(ms: number): void {
      now = ms;
    },
    start(entry: string, entryFunction: string, inputJson: string): void {
      let result: unknown;
      try {
        const exports = load(entry);
        const fn = exports === null || exports === undefined ? undefined : exports[entryFunction];
        if (typeof fn !== 'function') {
          settleRejected(makeError(`entry function '${entryFunction}' is not exported by module '${entry}'`, 'TypeError'));
          return;
        }
        result = apply(fn, undefined, [ctx, JSONparse(inputJson)]);
      } catch (error) {
        settleRejected(error);
        return;
      }
      SPromise.resolve(result).then(settleResolved, settleRejected);
    },
    resolvePending(kind: string, seq: number, json: string): void {
      const key = `${kind}#${seq}`;
      const settlers = pending.get(key);
      if (settlers === undefined) return;
      pending.delete(key);
      settlers.resolve(JSONparse(json));
    },
    rejectPending(kind: string, seq: number, message: string, name: string): void {
      const key = `${kind}#${seq}`;
      const settlers = pending.get(key);
      if (settlers === undefined) return;
      pending.delete(key);
      settlers.reject(makeError(message, name));
    },
    signal(name: string, json: string): void {
      const waiters = signalWaiters.get(name);
      if (waiters !== undefined && waiters.length > 0) {
        (waiters.shift() as (value: unknown) => void)(JSONparse(json));
        return;
      }
      const buffered = signalBuffer.get(name) ?? [];
      buffered.push(json);
      signalBuffer.set(name, buffered);
    },
    verify(entry: string, entryFunction: string, activitiesJson: string): string {
      try {
        let exports: any;
        try {
          exports = load(entry);
        } catch (error) {
          return `evaluating entry module '${entry}' threw ${describe(error)}`;
        }
        const fn = exports === null || exports === undefined ? undefined : exports[entryFunction];
        if (typeof fn !== 'function') {
          return `entry function '${entryFunction}' is not exported by module '${entry}' (exports.${entryFunction} is ${typeof fn})`;
        }
        const wanted: string[] = JSONparse(activitiesJson);
        const activities = exports.activities;
        const missing = wanted.filter(
          (name) => activities === null || activities === undefined || typeof activities[name] !== 'function',
        );
        if (missing.length > 0) {
          const names = missing.map((name) => `'${name}'`).join(', ');
          return `declared activit${missing.length === 1 ? 'y' : 'ies'} ${names} ha${missing.length === 1 ? 's' : 've'} no implementation in exports.activities of module '${entry}'`;
        }
        return '';
      } catch (error) {
        return `checking entry module '${entry}' threw ${describe(error)}`;
      }
    },
    callActivity(entry: string, name: string, inputJson: string): void {
      const done = (ok: boolean, json: string): void => host.activityDone(ok, json);
      let result: unknown;
      try {
        const exports = load(entry);
        const activities = exports === null || exports === undefined ? undefined : exports.activities;
        const fn = activities === null || activities === undefined ? undefined : activities[name];
        if (typeof fn !== 'function') {
          done(false, JSONstringify({ message: `activity '${name}' is not implemented by module '${entry}' (exports.activities.${name} is ${typeof fn})`, name: 'TypeError' }));
          return;
        }
        result = apply(fn, activities, [JSONparse(inputJson)]);
      } catch (error) {
        done(false, errorInfoJson(error));
        return;
      }
      SPromise.resolve(result).then(
        (value) => {
          let json: string;
          try {
            json = toJson(value);
          } catch (error) {
            done(false, JSONstringify({ message: `activity '${name}' result is not JSON-serializable: ${describe(error)}`, name: 'TypeError' }));
            return;
          }
          done(true, json);
        },
        (error) => done(false, errorInfoJson(error)),
      );
    },
    fireTimer(id: number): void {
      if (timerFire !== undefined) timerFire(id);
    },
  });
}

/** The prelude as source text, evaluated in each context to a function (host, optionsJson) → api. */
export const PRELUDE_SOURCE = `(${prelude.toString()})`;
