// A full garbage collection on demand, for the one place that needs it: checking a large
// package's modules one after another. Each check compiles a module's text; V8 keeps the
// compiled script (and through it the text) alive in the old generation until its next full
// collection, which on a small heap can come after tens of megabytes of such garbage. Loading a
// 50 MB package would hold about as much again in dead module text. Collecting every few
// megabytes of checked text keeps a load's memory close to the archive's size.
//
// V8 offers `gc` only with --expose-gc. The flag is switched on just long enough to create one
// context that has it, then off again, on the main thread when this module is first imported —
// before any code thread exists, so no sandbox context is ever created with `gc` in it.
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread } from 'node:worker_threads';

/** Above this much live heap a full collection costs more than the memory it saves matters. */
const CHEAP_HEAP_BYTES = 96 * 1024 * 1024;

const gc: (() => void) | undefined = (() => {
  if (!isMainThread) return undefined;
  const already = typeof (globalThis as { gc?: unknown }).gc === 'function' ? ((globalThis as { gc: () => void }).gc) : undefined;
  if (already) return already;
  try {
    v8.setFlagsFromString('--expose-gc');
    try {
      const fn = vm.runInNewContext('gc') as unknown;
      return typeof fn === 'function' ? (fn as () => void) : undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  } catch {
    return undefined;
  }
})();

/** The heap in use right after the last collection this module ran (or at `heapMark`). */
let floor = Number.POSITIVE_INFINITY;

/**
 * Marks the heap in use now as the level `collectGarbage` measures growth from: called as a
 * load starts, so that only what the load itself piles up can cause a collection (a load of a
 * small package never does, whatever the rest of the process holds).
 */
export function heapMark(): void {
  try {
    floor = v8.getHeapStatistics().used_heap_size;
  } catch {
    floor = Number.POSITIVE_INFINITY;
  }
}

/**
 * Runs a full collection when the heap in use has grown by `growth` bytes since the last one
 * (or the last heapMark; never before one),
 * this thread can (the main thread) and its heap is small enough for a collection to be quick
 * (a one-shot command, not a server holding many runs). Cheap to call often. Never throws.
 */
export function collectGarbage(growth = 0): void {
  if (gc === undefined) return;
  try {
    const used = v8.getHeapStatistics().used_heap_size;
    if (used < floor + growth || used > CHEAP_HEAP_BYTES) return;
    gc();
    floor = v8.getHeapStatistics().used_heap_size;
  } catch {
    // only ever an optimization
  }
}
