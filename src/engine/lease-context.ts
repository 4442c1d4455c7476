// Which writes are an operator's command rather than a drive of a run (see lease.ts). Kept
// apart from lease.ts so the LevelDB path never imports the fleet side.
import { AsyncLocalStorage } from 'node:async_hooks';

const command = new AsyncLocalStorage<true>();

/** Marks writes inside `fn` as an operator's command (signal, terminate), not a drive. */
export function asCommand<T>(fn: () => Promise<T>): Promise<T> {
  return command.run(true, fn);
}

export function inCommand(): boolean {
  return command.getStore() === true;
}
