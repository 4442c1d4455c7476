// How far V8 optimises this process's JavaScript: the one definition, applied by the code pool
// as it starts the threads that run workflow code (CLI commands and in-process engines alike).
//
// AION_JIT=baseline (the default): no optimising compiler (V8's --max-opt=1: the interpreter and
// the Sparkplug baseline compiler only). The engine's own code is glue around the store and the
// threads, and gains nothing from TurboFan in the long run (the same 145 µs per activity step
// after 5,000 steps either way), while TurboFan's compile jobs, tens of milliseconds each for
// the engine's step functions, compete with the run for the machine's cores: on 2 cores the
// first 1,000 steps of a process took twice as long (300 against 140 µs per step) and a run
// start 1.5 times as long. The cost is in user code that computes: a tight numeric loop in an
// activity runs about 3.5 times slower, object-heavy code about 1.5 times.
// AION_JIT=optimizing: V8's default tiers, for activities that compute more than they wait.
//
// Process-wide (V8 flags cannot differ between threads), set once, never undone, and only by a
// process that runs workflow code (the code pool applies it as it starts): a command that only
// reads the state directory starts as fast as before (a process's first 100 ms gain nothing
// from TurboFan either, but changing flags costs their caches). V8 keys its code cache by the
// flags, so bin/aion writes a cache it has to write just before they change (it leaves a
// function at BEFORE_FLAGS on globalThis) and never after (FLAGS_CHANGED): one made under the
// new flags would be rejected by every later start, which reads it under the old ones.

export type JitMode = 'baseline' | 'optimizing';

export const JIT_MODES: readonly JitMode[] = ['baseline', 'optimizing'];

/** The mode `AION_JIT` asks for, or the problem with its value (empty means the default). */
export function jitMode(env: NodeJS.ProcessEnv = process.env): { mode: JitMode } | { problem: string } {
  const value = env.AION_JIT;
  if (value === undefined || value === '') return { mode: 'baseline' };
  if ((JIT_MODES as readonly string[]).includes(value)) return { mode: value as JitMode };
  return { problem: `AION_JIT must be 'baseline' or 'optimizing', not '${value.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}'` };
}

/** Set on globalThis (to true) once this process has changed V8's flags: see above. */
export const FLAGS_CHANGED = Symbol.for('aion.v8-flags-changed');
/** Where bin/aion leaves what to do just before the flags change (write its code cache). */
export const BEFORE_FLAGS = Symbol.for('aion.before-v8-flags');

let applied: JitMode | undefined;

/**
 * Applies the mode `AION_JIT` asks for to this process, once (later calls return the mode first
 * applied). Returns the problem instead, changing nothing, when the value is not a mode.
 */
export function applyJit(env: NodeJS.ProcessEnv = process.env): { mode: JitMode } | { problem: string } {
  if (applied !== undefined) return { mode: applied };
  const wanted = jitMode(env);
  if ('problem' in wanted) return wanted;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (wanted.mode === 'baseline') {
    const before = (globalThis as Record<symbol, unknown>)[BEFORE_FLAGS];
    if (typeof before === 'function') {
      try {
        before();
      } catch {
        // Only speed is at stake (a code cache not written).
      }
    }
    (globalThis as Record<symbol, unknown>)[FLAGS_CHANGED] = true;
    (require('node:v8') as typeof import('node:v8')).setFlagsFromString('--max-opt=1');
  }
  applied = wanted.mode;
  return wanted;
}
