// Which writes are an operator's command rather than a drive of a run (see lease.ts). Kept
// apart from lease.ts so the LevelDB path never imports the fleet side, and inert until a
// fleet enables it: an AsyncLocalStorage that has run once keeps Node's promise hooks on for
// the whole process, which would slow every run step on LevelDB too.
import { AsyncLocalStorage } from 'node:async_hooks';

let command: AsyncLocalStorage<true> | undefined;

/** Called by a Fleet (PostgreSQL only): from now on asCommand marks what it runs. */
export function enableCommandContext(): void {
  command ??= new AsyncLocalStorage<true>();
}

/** Marks writes inside `fn` as an operator's command (signal, terminate), not a drive. */
export function asCommand<T>(fn: () => Promise<T>): Promise<T> {
  return command === undefined ? fn() : command.run(true, fn);
}

export function inCommand(): boolean {
  return command?.getStore() === true;
}
