// The sandbox side of the wall. `prelude` is never called in the host: its source text
// (PRELUDE_SOURCE) is evaluated once inside a fresh vm context, so every object it makes (ctx
// objects, promises, errors, cloned values, module loaders) belongs to that context's realm and
// every promise continuation lands on that context's own microtask queue.
//
// One context serves many runs (workflow mode) or every activity call of one version (activity
// mode). In workflow mode the context's intrinsics are frozen once the prelude has captured what
// it needs, and each run has its own slot: its module instances, its pending calls, its signals,
// its clock and random generator, and its own user-defined globals, swapped onto the global
// object while the run executes (`enter`) and back into its slot afterwards (`leave`). So two
// runs of one version never see each other's globals or module state, and no run can change an
// intrinsic another run (or the prelude itself) relies on.
//
// Only primitives cross the wall: the host hands in a bridge of host functions taking and
// returning strings and numbers; the bridge never throws (its owner guarantees it) and its
// arguments are checked and bounded here before they leave the sandbox. Values travel as JSON
// text that is parsed on the receiving side, so workflow code never holds a host object.
//
// The function must stay self-contained: it may not reference anything outside its own body.

/** Host functions the sandbox calls. Arguments and results are primitives only; none throws. */
export interface HostBridge {
  /** Runs the host's current job; called by the pump script inside `runInContext`. */
  runJob(): void;
  /** Resolves a require: the logical name, or `!` followed by a refusal message. */
  resolve(version: string, from: string, spec: string): string;
  /** Compiles a module of the version into the context (defineModule): '' or the problem. */
  need(version: string, name: string): string;
  /** Records a workflow command of the current run; returns its seq (per kind, from 1). */
  command(kind: string, name: string, inputJson: string, workflowId: string): number;
  /** Reports the current run's outcome: completed (result JSON), failed (ErrorInfo JSON), continued_as_new (input JSON). */
  settle(status: string, json: string): void;
  /** Console output of activities. */
  log(level: string, text: string): void;
  /** Activity timers: schedules a host timer and returns its id. */
  setTimer(ms: number): number;
  clearTimer(id: number): void;
  /** Reports an activity's outcome: result JSON, or ErrorInfo JSON when !ok. */
  activityDone(callId: number, ok: boolean, json: string): void;
}

/** Sandbox functions the host calls, always from inside a pump step. */
export interface PreludeApi {
  defineModule(version: string, name: string, wrapper: unknown): void;
  dropVersion(version: string): void;
  /** Creates a run's slot; `configJson` is a RunConfig. */
  createRun(runId: string, configJson: string): void;
  dropRun(runId: string): void;
  /** Makes a run current (its globals on the global object); '' when it does not exist. */
  enter(runId: string): string;
  leave(): void;
  setNow(ms: number): void;
  start(inputJson: string): void;
  resolvePending(kind: string, seq: number, json: string): void;
  rejectPending(kind: string, seq: number, message: string, name: string): void;
  signal(name: string, json: string): void;
  /** '' when the entry is fine, else a message naming the problem. */
  verify(version: string, entry: string, entryFunction: string, activitiesJson: string): string;
  callActivity(callId: number, version: string, entry: string, name: string, inputJson: string): void;
  fireTimer(id: number, callId: number): void;
  /** Freezes the intrinsics (workflow mode, once, after the prelude's setup). */
  lockdown(): void;
}

export interface PreludeOptions {
  mode: 'workflow' | 'activity';
  /** Source of the workflow id rule (ctx.child options.workflowId is checked against it). */
  workflowIdPattern: string;
}

export interface RunConfig {
  version: string;
  entryModule: string;
  entryFunction: string;
  seed: number;
  now: number;
  /** Declared activity names; null = unchecked. */
  activities: string[] | null;
  info: { workflowId: string; runId: string; workflowType: string; version: string };
}

export function prelude(host: HostBridge, optionsJson: string, store: object): PreludeApi {
  'use strict';
  const G: any = globalThis;
  // \`store\`: the object behind the context's global (vm.createContext's argument, null
  // prototype), where the string-keyed properties defined on the global land. Only counted here.
  // Every intrinsic the prelude uses is captured here, before any user code exists.
  const JSONparse = JSON.parse;
  const JSONstringify = JSON.stringify;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const ownKeys = Reflect.ownKeys;
  const defineProperty = Object.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const getPrototypeOf = Object.getPrototypeOf;
  const freeze = Object.freeze;
  const isFrozen = Object.isFrozen;
  const getOwnPropertySymbols = Object.getOwnPropertySymbols;
  const hasOwn = Object.hasOwn;
  const create = Object.create;
  const SPromise: PromiseConstructor = G.Promise;
  const promiseResolve = SPromise.resolve.bind(SPromise);
  const promiseReject = SPromise.reject.bind(SPromise);
  const promiseThen = SPromise.prototype.then;
  const SError: ErrorConstructor = G.Error;
  const STypeError: TypeErrorConstructor = G.TypeError;
  const SRangeError: RangeErrorConstructor = G.RangeError;
  const SMap: MapConstructor = G.Map;
  const SSet: SetConstructor = G.Set;
  const SRegExp: RegExpConstructor = G.RegExp;
  const mapGet = SMap.prototype.get;
  const mapSet = SMap.prototype.set;
  const mapHas = SMap.prototype.has;
  const mapDelete = SMap.prototype.delete;
  const setHas = SSet.prototype.has;
  const regexpTest = SRegExp.prototype.test;
  const arrayPush = Array.prototype.push;
  const arrayShift = Array.prototype.shift;
  const arrayJoin = Array.prototype.join;
  const stringSlice = String.prototype.slice;
  const SString = String;
  const imul = Math.imul;
  const options: PreludeOptions = JSONparse(optionsJson);
  const workflowMode = options.mode === 'workflow';
  const workflowIdRule = new SRegExp(options.workflowIdPattern);
  const MAX_SPEC = 1024;

  const mget = <K, V>(m: Map<K, V>, k: K): V | undefined => apply(mapGet, m, [k]) as V | undefined;
  const mset = <K, V>(m: Map<K, V>, k: K, v: V): void => void apply(mapSet, m, [k, v]);
  const mhas = <K, V>(m: Map<K, V>, k: K): boolean => apply(mapHas, m, [k]) as boolean;
  const mdel = <K, V>(m: Map<K, V>, k: K): boolean => apply(mapDelete, m, [k]) as boolean;
  const then = (p: Promise<unknown>, ok: (v: unknown) => void, bad: (e: unknown) => void): void => void apply(promiseThen, p, [ok, bad]);

  const hidden = (name: string, value: unknown): void => {
    defineProperty(G, name, { value, writable: false, enumerable: false, configurable: false });
  };

  hidden('__aion_pump__', function __aion_pump__() {
    host.runJob();
  });

  const describe = (error: unknown): string => {
    try {
      if (error !== null && typeof error === 'object' && 'message' in error) {
        const name = SString((error as { name?: unknown }).name ?? 'Error');
        return `${name}: ${SString((error as { message: unknown }).message)}`;
      }
      return SString(error);
    } catch {
      return 'an unprintable value';
    }
  };
  const errorInfoJson = (error: unknown): string => {
    try {
      if (error !== null && typeof error === 'object' && 'message' in error) {
        const name = (error as { name?: unknown }).name;
        return JSONstringify({
          message: SString((error as { message: unknown }).message),
          name: typeof name === 'string' && name !== '' ? name : 'Error',
        });
      }
      return JSONstringify({ message: `non-error thrown: ${SString(error)}`, name: 'Error' });
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
    if (name !== '' && name !== 'Error') defineProperty(error, 'name', { value: name, writable: true, configurable: true, enumerable: false });
    return error;
  };

  // ---- run slots ---------------------------------------------------------------------------------

  type Settlers = { resolve: (value: unknown) => void; reject: (error: unknown) => void };
  interface Slot {
    config: RunConfig;
    ctx: unknown;
    now: number;
    rng: number;
    declared: Set<string> | null;
    declaredList: string;
    instances: Map<string, { exports: any; id: string }>;
    pending: Map<string, Settlers>;
    signalWaiters: Map<string, Array<(value: unknown) => void>>;
    signalBuffer: Map<string, string[]>;
    finished: boolean;
    /** User-defined globals of this run while it is not current. */
    bag: Map<PropertyKey, PropertyDescriptor>;
  }
  const slots = new SMap<string, Slot>();
  let current: Slot | undefined;

  // ---- globals: no Node APIs ever; determinism in workflow mode --------------------------------

  const consoleObject: Record<string, unknown> = create(null);
  for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir']) {
    consoleObject[level] = workflowMode
      ? function () {}
      : function (...args: unknown[]) {
          const parts: string[] = [];
          for (const arg of args) {
            if (typeof arg === 'string') apply(arrayPush, parts, [arg]);
            else {
              let text: string | undefined;
              try {
                text = typeof arg === 'object' && arg !== null ? JSONstringify(arg) : SString(arg);
              } catch {
                text = undefined;
              }
              apply(arrayPush, parts, [text ?? describe(arg)]);
            }
          }
          host.log(level, apply(arrayJoin, parts, [' ']) as string);
        };
  }
  hidden('console', freeze(consoleObject));
  hidden('queueMicrotask', function queueMicrotask(callback: () => void) {
    if (typeof callback !== 'function') throw new STypeError('queueMicrotask needs a function');
    then(promiseResolve(undefined), () => callback(), () => {});
  });

  // Stacks show the frames of package modules only (`name$version:line:col`): no host frame, no
  // host path. Fixed for good, so no code can install a formatter that sees raw call sites.
  const moduleFrame = new SRegExp('^[a-z0-9_@]+\\$[0-9a-z:._-]+$');
  defineProperty(SError, 'prepareStackTrace', {
    value: function prepareStackTrace(error: unknown, frames: Array<{ getFileName(): unknown; getLineNumber(): unknown; getColumnNumber(): unknown; getFunctionName(): unknown }>) {
      let text = describe(error);
      try {
        for (let i = 0; i < frames.length; i++) {
          const frame = frames[i]!;
          const file = frame.getFileName();
          if (typeof file !== 'string' || !apply(regexpTest, moduleFrame, [file])) continue;
          const fn = frame.getFunctionName();
          const where = `${file}:${SString(frame.getLineNumber())}:${SString(frame.getColumnNumber())}`;
          text += typeof fn === 'string' && fn !== '' ? `\n    at ${fn} (${where})` : `\n    at ${where}`;
        }
      } catch {
        // A frame that cannot be described is left out.
      }
      return text;
    },
    writable: false,
    enumerable: false,
    configurable: false,
  });

  let timerFire: ((id: number, callId: number) => void) | undefined;
  const nowOf = (): number => (current === undefined ? 0 : current.now);

  if (workflowMode) {
    for (const name of ['WeakRef', 'FinalizationRegistry', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'eval']) {
      delete G[name];
    }
    // mulberry32 over the current run's state: small, fast and fully determined by the seed.
    const random = (): number => {
      const slot = current;
      if (slot === undefined) return 0;
      slot.rng = (slot.rng + 0x6d2b79f5) >>> 0;
      let t = slot.rng;
      t = imul(t ^ (t >>> 15), t | 1);
      t ^= t + imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    defineProperty(G.Math, 'random', { value: random, writable: false, configurable: false });

    // Workflow code sees UTC and the en-US locale whatever the host's: the local-time
    // accessors of Date are the UTC ones, and Intl and the locale-sensitive methods default
    // to en-US (and dates to UTC) when given no locale.
    const RealDate: DateConstructor = G.Date;
    const dateProto: any = RealDate.prototype;
    const DeterministicDate = function Date(this: unknown, ...args: unknown[]): unknown {
      if (new.target === undefined) return apply(dateProto.toString, new RealDate(nowOf()), []);
      return construct(RealDate, args.length === 0 ? [nowOf()] : args, new.target);
    } as unknown as DateConstructor;
    defineProperty(DeterministicDate, 'prototype', { value: dateProto, writable: false });
    defineProperty(DeterministicDate, 'now', { value: function now() { return nowOf(); }, writable: true, configurable: true });
    defineProperty(DeterministicDate, 'parse', { value: RealDate.parse, writable: true, configurable: true });
    defineProperty(DeterministicDate, 'UTC', { value: RealDate.UTC, writable: true, configurable: true });
    defineProperty(dateProto, 'constructor', { value: DeterministicDate, writable: true, configurable: true });
    for (const part of ['FullYear', 'Month', 'Date', 'Day', 'Hours', 'Minutes', 'Seconds', 'Milliseconds']) {
      for (const prefix of ['get', 'set']) {
        if (prefix === 'set' && part === 'Day') continue;
        const utc = dateProto[`${prefix}UTC${part}`];
        defineProperty(dateProto, `${prefix}${part}`, { value: utc, writable: true, configurable: true });
      }
    }
    defineProperty(dateProto, 'getTimezoneOffset', { value: function getTimezoneOffset() { return 0; }, writable: true, configurable: true });
    const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const pad = (n: number, w = 2): string => apply(String.prototype.padStart, SString(n), [w, '0']) as string;
    const dateString = (d: any): string => {
      if (d.getUTCFullYear() !== d.getUTCFullYear()) return 'Invalid Date';
      return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${pad(d.getUTCDate())} ${pad(d.getUTCFullYear(), 4)}`;
    };
    const timeString = (d: any): string => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} GMT+0000 (Coordinated Universal Time)`;
    defineProperty(dateProto, 'toString', { value: function toString(this: any) { const s = dateString(this); return s === 'Invalid Date' ? s : `${s} ${timeString(this)}`; }, writable: true, configurable: true });
    defineProperty(dateProto, 'toDateString', { value: function toDateString(this: any) { return dateString(this); }, writable: true, configurable: true });
    defineProperty(dateProto, 'toTimeString', { value: function toTimeString(this: any) { return dateString(this) === 'Invalid Date' ? 'Invalid Date' : timeString(this); }, writable: true, configurable: true });
    replace('Date', DeterministicDate);

    const withDefaults = (locales: unknown, opts: unknown, date: boolean): [unknown, unknown] => {
      const loc = locales === undefined ? 'en-US' : locales;
      if (!date) return [loc, opts];
      if (opts === undefined || opts === null) return [loc, { timeZone: 'UTC' }];
      if (typeof opts === 'object' && (opts as { timeZone?: unknown }).timeZone === undefined) {
        const copy: Record<string, unknown> = {};
        for (const k of ownKeys(opts as object)) if (typeof k === 'string') copy[k] = (opts as Record<string, unknown>)[k];
        copy.timeZone = 'UTC';
        return [loc, copy];
      }
      return [loc, opts];
    };
    const Intl: any = G.Intl;
    if (Intl) {
      for (const name of ['DateTimeFormat', 'NumberFormat', 'Collator', 'PluralRules', 'RelativeTimeFormat', 'ListFormat', 'DisplayNames', 'Segmenter']) {
        const Real = Intl[name];
        if (typeof Real !== 'function') continue;
        const isDate = name === 'DateTimeFormat';
        const Wrapped = function (this: unknown, locales?: unknown, opts?: unknown): unknown {
          return construct(Real, withDefaults(locales, opts, isDate), new.target ?? Real);
        };
        defineProperty(Wrapped, 'name', { value: name });
        defineProperty(Wrapped, 'prototype', { value: Real.prototype, writable: false });
        defineProperty(Wrapped, 'supportedLocalesOf', { value: Real.supportedLocalesOf, writable: true, configurable: true });
        defineProperty(Real.prototype, 'constructor', { value: Wrapped, writable: true, configurable: true });
        defineProperty(Intl, name, { value: Wrapped, writable: true, configurable: true });
      }
      // Date formatting with no date reads the clock: give it the run's time.
      const dtf = Intl.DateTimeFormat.prototype;
      const formatGetter = getOwnPropertyDescriptor(dtf, 'format')?.get;
      if (formatGetter) {
        defineProperty(dtf, 'format', {
          configurable: true,
          get(this: unknown) {
            const format = apply(formatGetter, this, []) as (date?: unknown) => string;
            return (date?: unknown) => format(date === undefined ? nowOf() : date);
          },
        });
      }
      const formatToParts = dtf.formatToParts;
      defineProperty(dtf, 'formatToParts', {
        configurable: true,
        writable: true,
        value: function formatToParts_(this: unknown, date?: unknown) {
          return apply(formatToParts, this, [date === undefined ? nowOf() : date]);
        },
      });
    }
    const localeMethod = (proto: any, name: string, date: boolean): void => {
      const real = proto[name];
      if (typeof real !== 'function') return;
      defineProperty(proto, name, {
        configurable: true,
        writable: true,
        value: {
          [name](this: unknown, locales?: unknown, opts?: unknown) {
            return apply(real, this, withDefaults(locales, opts, date));
          },
        }[name],
      });
    };
    localeMethod(dateProto, 'toLocaleString', true);
    localeMethod(dateProto, 'toLocaleDateString', true);
    localeMethod(dateProto, 'toLocaleTimeString', true);
    localeMethod(G.Number.prototype, 'toLocaleString', false);
    localeMethod(G.BigInt.prototype, 'toLocaleString', false);
    localeMethod(G.Array.prototype, 'toLocaleString', false);
    const localeCompare = String.prototype.localeCompare;
    defineProperty(String.prototype, 'localeCompare', {
      configurable: true,
      writable: true,
      value: function localeCompare_(this: unknown, that: unknown, locales?: unknown, opts?: unknown) {
        return apply(localeCompare, this, [that, locales === undefined ? 'en-US' : locales, opts]);
      },
    });
    for (const name of ['toLocaleUpperCase', 'toLocaleLowerCase']) {
      const real = (String.prototype as any)[name];
      defineProperty(String.prototype, name, {
        configurable: true,
        writable: true,
        value: function (this: unknown, locales?: unknown) {
          return apply(real, this, [locales === undefined ? 'en-US' : locales]);
        },
      });
    }
  } else {
    const callbacks = new SMap<number, { fn: (...args: unknown[]) => unknown; args: unknown[] }>();
    hidden('setTimeout', function setTimeout(fn: unknown, ms?: unknown, ...args: unknown[]) {
      if (typeof fn !== 'function') throw new STypeError('setTimeout needs a function');
      const delay = typeof ms === 'number' && ms > 0 && ms < 2 ** 31 ? ms : 0;
      const id = host.setTimer(delay);
      mset(callbacks, id, { fn: fn as (...a: unknown[]) => unknown, args });
      return id;
    });
    hidden('clearTimeout', function clearTimeout(id: unknown) {
      if (typeof id === 'number' && mdel(callbacks, id)) host.clearTimer(id);
    });
    timerFire = (id: number, callId: number): void => {
      const entry = mget(callbacks, id);
      if (entry === undefined) return;
      mdel(callbacks, id);
      try {
        apply(entry.fn, undefined, entry.args);
      } catch (error) {
        host.activityDone(callId, false, errorInfoJson(error));
      }
    };
  }

  function replace(name: string, value: unknown): void {
    defineProperty(G, name, { value, writable: true, enumerable: false, configurable: true });
  }

  // ---- modules ---------------------------------------------------------------------------------

  const versions = new SMap<string, Map<string, (...args: unknown[]) => unknown>>();
  /** Activity mode: module instances per version (activities of a version share them). */
  const sharedInstances = new SMap<string, Map<string, { exports: any; id: string }>>();

  const load = (version: string, instances: Map<string, { exports: any; id: string }>, name: string): any => {
    const cached = mget(instances, name);
    if (cached !== undefined) return cached.exports;
    // Modules are compiled into the context on first use (a large package costs its size once,
    // in the thread that stores it, and only the modules a run needs are compiled here).
    let wrappers = mget(versions, version);
    let wrapper = wrappers === undefined ? undefined : mget(wrappers, name);
    if (wrapper === undefined) {
      const problem = host.need(version, name);
      if (problem !== '') throw new SError(problem);
      wrappers = mget(versions, version);
      wrapper = wrappers === undefined ? undefined : mget(wrappers, name);
      if (wrapper === undefined) throw new SError(`no module '${name}' in this package version`);
    }
    const module = { exports: {} as any, id: name };
    mset(instances, name, module);
    const require = function require(spec: unknown): unknown {
      if (typeof spec !== 'string') throw new STypeError('require(spec) needs a string');
      if (spec.length > MAX_SPEC) throw new SError(`cannot require a specifier of ${spec.length} characters (at most ${MAX_SPEC})`);
      const resolved = host.resolve(version, name, spec);
      if (resolved.charAt(0) === '!') throw new SError(apply(stringSlice, resolved, [1]) as string);
      return load(version, instances, resolved);
    };
    try {
      apply(wrapper, module.exports, [module.exports, require, module]);
    } catch (error) {
      mdel(instances, name);
      throw error;
    }
    return module.exports;
  };

  /** An own function property, never an inherited one (so `isPrototypeOf` is no entry). */
  const ownFunction = (holder: unknown, name: string): ((...args: unknown[]) => unknown) | undefined => {
    if (holder === null || (typeof holder !== 'object' && typeof holder !== 'function')) return undefined;
    if (!hasOwn(holder as object, name)) return undefined;
    const value = (holder as Record<string, unknown>)[name];
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown) : undefined;
  };

  // ---- the workflow context --------------------------------------------------------------------

  const never = (): Promise<never> => new SPromise<never>(() => {});
  const requireSlot = (): Slot => {
    if (current === undefined) throw new SError('no workflow run is executing');
    return current;
  };
  const issue = (slot: Slot, kind: string, name: string, input: unknown, workflowId: string, what: string): Promise<unknown> => {
    if (slot.finished || slot !== current) return never();
    let inputJson: string;
    try {
      inputJson = toJson(input);
    } catch (error) {
      return promiseReject(new STypeError(`${what} input is not JSON-serializable: ${describe(error)}`));
    }
    const seq = host.command(kind, name, inputJson, workflowId);
    return new SPromise((resolve, reject) => {
      mset(slot.pending, `${kind}#${seq}`, { resolve, reject });
    });
  };

  const continueSentinel = new SError('workflow continued as new');
  defineProperty(continueSentinel, 'name', { value: 'ContinueAsNew' });

  const makeCtx = (slot: Slot): unknown => {
    const info = freeze({ ...slot.config.info });
    return freeze({
      info,
      activity(name: unknown, input?: unknown): Promise<unknown> {
        if (typeof name !== 'string') return promiseReject(new STypeError('ctx.activity(name, input) needs a string name'));
        if (slot.declared !== null && !apply(setHas, slot.declared, [name])) {
          return promiseReject(new SError(`activity '${name}' is not declared in the manifest (declared: ${slot.declaredList})`));
        }
        return issue(slot, 'activity', name, input, '', `activity '${name}'`);
      },
      sleep(seconds: unknown): Promise<unknown> {
        if (typeof seconds !== 'number' || !(seconds > 0) || seconds === Infinity) {
          return promiseReject(new SRangeError(`ctx.sleep(seconds) needs a positive number of seconds, got ${SString(seconds)}`));
        }
        const p = issue(slot, 'timer', '', seconds, '', 'timer');
        return new SPromise((resolve, reject) => then(p, () => resolve(undefined), reject));
      },
      signal(name: unknown): Promise<unknown> {
        if (typeof name !== 'string') return promiseReject(new STypeError('ctx.signal(name) needs a string name'));
        if (slot.finished) return never();
        const buffered = mget(slot.signalBuffer, name);
        if (buffered !== undefined && buffered.length > 0) return promiseResolve(JSONparse(apply(arrayShift, buffered, []) as string));
        return new SPromise((resolve) => {
          const waiters = mget(slot.signalWaiters, name) ?? [];
          apply(arrayPush, waiters, [resolve]);
          mset(slot.signalWaiters, name, waiters);
        });
      },
      child(workflowType: unknown, input?: unknown, childOptions?: unknown): Promise<unknown> {
        if (typeof workflowType !== 'string' || workflowType === '' || workflowType.length > 200) {
          return promiseReject(new STypeError('ctx.child(workflow_type, input, options) needs a workflow type'));
        }
        let workflowId = '';
        if (childOptions !== undefined && childOptions !== null) {
          const id = (childOptions as { workflowId?: unknown }).workflowId;
          if (id !== undefined) {
            if (typeof id !== 'string' || !apply(regexpTest, workflowIdRule, [id])) {
              return promiseReject(new STypeError('ctx.child options.workflowId must be 1 to 200 printable ASCII characters without spaces'));
            }
            workflowId = id;
          }
        }
        return issue(slot, 'child', workflowType, input, workflowId, `child '${workflowType}'`);
      },
      continueAsNew(input?: unknown): never {
        if (!slot.finished && slot === current) {
          let inputJson: string;
          try {
            inputJson = toJson(input);
          } catch (error) {
            throw new STypeError(`ctx.continueAsNew input is not JSON-serializable: ${describe(error)}`);
          }
          slot.finished = true;
          host.settle('continued_as_new', inputJson);
        }
        throw continueSentinel;
      },
      now(): number {
        return slot.now;
      },
      random(): number {
        return G.Math.random();
      },
    });
  };

  const settleResolved = (slot: Slot, value: unknown): void => {
    if (slot.finished) return;
    slot.finished = true;
    let json: string;
    try {
      json = toJson(value);
    } catch (error) {
      host.settle('failed', JSONstringify({ message: `workflow result is not JSON-serializable: ${describe(error)}`, name: 'TypeError' }));
      return;
    }
    host.settle('completed', json);
  };
  const settleRejected = (slot: Slot, error: unknown): void => {
    if (slot.finished) return;
    slot.finished = true;
    host.settle('failed', errorInfoJson(error));
  };

  // ---- globals swapping and lockdown -----------------------------------------------------------

  /** The global object's own keys once the prelude is set up: the shared, frozen part. */
  let baseKeys: Set<PropertyKey> | undefined;
  /** How many keys \`store\` and the global's symbols had then (base keys cannot be deleted). */
  let baseStored = 0;
  let baseSymbols = 0;

  /** Moves the user-defined globals off the global object, into the current run's slot (if any). */
  const leave = (): void => {
    const slot = current;
    current = undefined;
    if (baseKeys === undefined) return;
    // The base keys are non-configurable, so equal counts mean no key of the run's is there:
    // two cheap counts instead of listing the global's keys (slow through its interceptors).
    if (ownKeys(store).length === baseStored && getOwnPropertySymbols(G).length === baseSymbols) return;
    const keys = ownKeys(G);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (apply(setHas, baseKeys, [key])) continue;
      const descriptor = getOwnPropertyDescriptor(G, key);
      if (slot !== undefined && descriptor !== undefined) mset(slot.bag, key, descriptor);
      delete G[key];
    }
  };

  /**
   * Keeps the global object's shape the runs' own business: its prototype, its extensibility
   * and non-configurable keys would outlive the run that set them, so changing the first two
   * is refused (a TypeError) and a key defined on it is always configurable (deleted when the
   * run leaves). Installed before the intrinsics are frozen; the prelude keeps the originals.
   */
  const guardGlobalShape = (): void => {
    const SObject: any = G.Object;
    const SReflect: any = G.Reflect;
    const refuse = (what: string) => new STypeError(`workflow code cannot ${what} the global object: every run in this thread shares it`);
    const install = (owner: object, name: string, value: (...args: any[]) => unknown): void => {
      defineProperty(value, 'name', { value: name, configurable: true });
      defineProperty(owner, name, { value, writable: true, enumerable: false, configurable: true });
    };
    const configurableCopy = (descriptor: any): any => {
      const copy = create(null);
      for (const field of ['value', 'writable', 'get', 'set', 'enumerable']) if (field in descriptor) copy[field] = descriptor[field];
      copy.configurable = true;
      return copy;
    };
    const isDescriptor = (d: unknown): boolean => d !== null && (typeof d === 'object' || typeof d === 'function');
    const objectDefine = SObject.defineProperty;
    const reflectDefine = SReflect.defineProperty;
    const objectDefineAll = SObject.defineProperties;
    install(SObject, 'defineProperty', function defineProperty(o: object, key: PropertyKey, d: PropertyDescriptor) {
      return apply(objectDefine, SObject, [o, key, o === G && isDescriptor(d) ? configurableCopy(d) : d]);
    });
    install(SReflect, 'defineProperty', function defineProperty(o: object, key: PropertyKey, d: PropertyDescriptor) {
      return apply(reflectDefine, SReflect, [o, key, o === G && isDescriptor(d) ? configurableCopy(d) : d]);
    });
    install(SObject, 'defineProperties', function defineProperties(o: object, all: PropertyDescriptorMap) {
      if (o !== G || !isDescriptor(all)) return apply(objectDefineAll, SObject, [o, all]);
      const copies = create(null);
      for (const key of ownKeys(all)) {
        const own = getOwnPropertyDescriptor(all, key);
        if (own !== undefined && own.enumerable) copies[key] = isDescriptor(all[key as any]) ? configurableCopy(all[key as any]) : all[key as any];
      }
      return apply(objectDefineAll, SObject, [o, copies]);
    });
    for (const [owner, name, reflect] of [
      [SObject, 'setPrototypeOf', false],
      [SReflect, 'setPrototypeOf', true],
      [SObject, 'preventExtensions', false],
      [SReflect, 'preventExtensions', true],
      [SObject, 'freeze', false],
      [SObject, 'seal', false],
    ] as const) {
      const original = owner[name];
      const what = name === 'setPrototypeOf' ? 'change the prototype of' : name === 'freeze' ? 'freeze' : name === 'seal' ? 'seal' : 'make non-extensible';
      install(owner, name, function (this: unknown, ...args: unknown[]) {
        if (args[0] === G) {
          if (reflect) return false;
          throw refuse(what);
        }
        return apply(original, owner, args);
      });
    }
    const protoAccessor = getOwnPropertyDescriptor(SObject.prototype, '__proto__');
    if (protoAccessor?.set !== undefined) {
      const setProto = protoAccessor.set;
      defineProperty(SObject.prototype, '__proto__', {
        get: protoAccessor.get,
        set: function (this: unknown, value: unknown) {
          if (this === G) throw refuse('change the prototype of');
          apply(setProto, this, [value]);
        },
        enumerable: protoAccessor.enumerable,
        configurable: true,
      });
    }
  };

  /**
   * Makes a run current, its globals on the global object. Lazy: the run stays current until
   * another one (or run-less code) needs the context, so its continuations, which run when the
   * step's microtasks drain, still find it current, and a run activated again costs no swap.
   */
  const enter = (slot: Slot): void => {
    if (current === slot) return;
    leave();
    current = slot;
    if (slot.bag.size === 0) return;
    for (const [key, descriptor] of slot.bag) {
      try {
        defineProperty(G, key, descriptor);
      } catch {
        // A key the run can no longer define (never happens for keys it defined itself).
      }
    }
    slot.bag = new SMap();
  };

  /**
   * Freezes every object reachable from the global object's properties (constructors,
   * prototypes, namespaces), so no run can change what another run or the prelude uses.
   * Properties that code commonly overrides on its own objects (`toString`, `constructor`, …)
   * become accessors whose setter defines an own property on the receiver, so assigning them
   * on an object that inherits from a frozen prototype works as it would elsewhere.
   */
  const lockdown = (): void => {
    guardGlobalShape();
    const overridable = new SSet(['constructor', 'toString', 'valueOf', 'toLocaleString', 'name', 'message', 'toJSON', 'hasOwnProperty', 'then', 'catch', 'finally', 'stack']);
    const seen = new SSet<object>();
    const stack: object[] = [];
    const visit = (value: unknown): void => {
      if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return;
      if (apply(setHas, seen, [value])) return;
      seen.add(value as object);
      apply(arrayPush, stack, [value]);
    };
    for (const key of ownKeys(G)) {
      const d = getOwnPropertyDescriptor(G, key);
      if (d === undefined) continue;
      visit(d.value);
      visit(d.get);
      visit(d.set);
      if (d.configurable) defineProperty(G, key, { ...d, ...('value' in d ? { writable: false } : {}), configurable: false });
    }
    while (stack.length > 0) {
      const object = stack.pop() as object;
      visit(getPrototypeOf(object));
      const isPrototype = typeof object === 'object' && hasOwn(object, 'constructor');
      for (const key of ownKeys(object)) {
        const d = getOwnPropertyDescriptor(object, key);
        if (d === undefined) continue;
        if ('value' in d) {
          visit(d.value);
          if (isPrototype && d.configurable && typeof key === 'string' && apply(setHas, overridable, [key])) {
            const value = d.value;
            defineProperty(object, key, {
              configurable: false,
              enumerable: d.enumerable,
              get() {
                return value;
              },
              set(this: unknown, next: unknown) {
                if (this === object) throw new STypeError(`Cannot assign to read only property '${key}' of a shared object`);
                defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
              },
            });
          }
        } else {
          visit(d.get);
          visit(d.set);
        }
      }
      if (!isFrozen(object)) {
        try {
          freeze(object);
        } catch {
          // An exotic object that cannot be frozen (none is reachable by workflow code as state).
        }
      }
    }
    baseKeys = new SSet(ownKeys(G));
    baseStored = ownKeys(store).length;
    baseSymbols = getOwnPropertySymbols(G).length;
  };

  return freeze({
    defineModule(version: string, name: string, wrapper: unknown): void {
      let table = mget(versions, version);
      if (table === undefined) mset(versions, version, (table = new SMap()));
      mset(table, name, wrapper as (...args: unknown[]) => unknown);
    },
    dropVersion(version: string): void {
      mdel(versions, version);
      mdel(sharedInstances, version);
    },
    createRun(runId: string, configJson: string): void {
      const config: RunConfig = JSONparse(configJson);
      const declared = config.activities === null ? null : new SSet(config.activities);
      const slot: Slot = {
        config,
        ctx: undefined,
        now: config.now,
        rng: config.seed >>> 0,
        declared,
        declaredList: config.activities === null || config.activities.length === 0 ? 'none' : apply(arrayJoin, config.activities, [', ']) as string,
        instances: new SMap(),
        pending: new SMap(),
        signalWaiters: new SMap(),
        signalBuffer: new SMap(),
        finished: false,
        bag: new SMap(),
      };
      slot.ctx = makeCtx(slot);
      mset(slots, runId, slot);
    },
    dropRun(runId: string): void {
      const slot = mget(slots, runId);
      if (slot === undefined) return;
      if (current === slot) leave();
      slot.finished = true;
      mdel(slots, runId);
    },
    enter(runId: string): string {
      const slot = mget(slots, runId);
      if (slot === undefined) return '';
      enter(slot);
      return runId;
    },
    leave,
    setNow(ms: number): void {
      if (current !== undefined) current.now = ms;
    },
    start(inputJson: string): void {
      const slot = requireSlot();
      let result: unknown;
      try {
        const exports = load(slot.config.version, slot.instances, slot.config.entryModule);
        const fn = ownFunction(exports, slot.config.entryFunction);
        if (fn === undefined) {
          settleRejected(slot, makeError(`entry function '${slot.config.entryFunction}' is not exported by module '${slot.config.entryModule}'`, 'TypeError'));
          return;
        }
        result = apply(fn, undefined, [slot.ctx, JSONparse(inputJson)]);
      } catch (error) {
        settleRejected(slot, error);
        return;
      }
      then(promiseResolve(result), (v) => settleResolved(slot, v), (e) => settleRejected(slot, e));
    },
    resolvePending(kind: string, seq: number, json: string): void {
      const slot = requireSlot();
      const key = `${kind}#${seq}`;
      const settlers = mget(slot.pending, key);
      if (settlers === undefined) return;
      mdel(slot.pending, key);
      settlers.resolve(JSONparse(json));
    },
    rejectPending(kind: string, seq: number, message: string, name: string): void {
      const slot = requireSlot();
      const key = `${kind}#${seq}`;
      const settlers = mget(slot.pending, key);
      if (settlers === undefined) return;
      mdel(slot.pending, key);
      settlers.reject(makeError(message, name));
    },
    signal(name: string, json: string): void {
      const slot = requireSlot();
      const waiters = mget(slot.signalWaiters, name);
      if (waiters !== undefined && waiters.length > 0) {
        (apply(arrayShift, waiters, []) as (value: unknown) => void)(JSONparse(json));
        return;
      }
      const buffered = mget(slot.signalBuffer, name) ?? [];
      apply(arrayPush, buffered, [json]);
      mset(slot.signalBuffer, name, buffered);
    },
    verify(version: string, entry: string, entryFunction: string, activitiesJson: string): string {
      leave();
      try {
        let exports: any;
        try {
          exports = load(version, new SMap(), entry);
        } catch (error) {
          return `evaluating entry module '${entry}' threw ${describe(error)}`;
        }
        if (ownFunction(exports, entryFunction) === undefined) {
          const value = exports === null || exports === undefined ? undefined : hasOwn(exports, entryFunction) ? exports[entryFunction] : undefined;
          return `entry function '${entryFunction}' is not exported by module '${entry}' (exports.${entryFunction} is ${typeof value}${value === undefined ? '' : ''})`;
        }
        const wanted: string[] = JSONparse(activitiesJson);
        const activities = exports !== null && exports !== undefined && hasOwn(exports, 'activities') ? exports.activities : undefined;
        const missing: string[] = [];
        for (const name of wanted) if (ownFunction(activities, name) === undefined) apply(arrayPush, missing, [name]);
        if (missing.length > 0) {
          const names = apply(arrayJoin, missing.map((name) => `'${name}'`), [', ']) as string;
          return `declared activit${missing.length === 1 ? 'y' : 'ies'} ${names} ha${missing.length === 1 ? 's' : 've'} no implementation in exports.activities of module '${entry}'`;
        }
        return '';
      } catch (error) {
        return `checking entry module '${entry}' threw ${describe(error)}`;
      }
    },
    callActivity(callId: number, version: string, entry: string, name: string, inputJson: string): void {
      const done = (ok: boolean, json: string): void => host.activityDone(callId, ok, json);
      let result: unknown;
      try {
        let instances = mget(sharedInstances, version);
        if (instances === undefined) mset(sharedInstances, version, (instances = new SMap()));
        const exports = load(version, instances, entry);
        const activities = exports !== null && exports !== undefined && hasOwn(exports, 'activities') ? exports.activities : undefined;
        const fn = ownFunction(activities, name);
        if (fn === undefined) {
          done(false, JSONstringify({ message: `activity '${name}' is not implemented by module '${entry}' (exports.activities.${name} is ${typeof (activities == null ? undefined : activities[name])})`, name: 'TypeError' }));
          return;
        }
        result = apply(fn, activities, [JSONparse(inputJson)]);
      } catch (error) {
        done(false, errorInfoJson(error));
        return;
      }
      then(
        promiseResolve(result),
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
    fireTimer(id: number, callId: number): void {
      if (timerFire !== undefined) timerFire(id, callId);
    },
    lockdown,
  });
}

/** The prelude as source text, evaluated in each context to a function (host, optionsJson) → api. */
export const PRELUDE_SOURCE = `(${prelude.toString()})`;
