// ShutdownGate: once shutdown begins, new work (loads, routes, unloads, starts) is refused with
// `shutting_down`; `close()` waits for the operations already admitted.
import { AionError } from '../errors.js';

export class ShutdownGate {
  private closing = false;
  private inFlight = 0;
  private drained: (() => void) | undefined;

  get isClosing(): boolean {
    return this.closing;
  }

  /** Admits one operation; the returned `end` must run on every path. */
  begin(what: string): () => void {
    if (this.closing) {
      throw new AionError('shutting_down', `the engine is shutting down and refuses new work (${what})`, {
        hint: 'retry once the engine has restarted',
      });
    }
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    };
  }

  /** Refuses new work from now on and resolves once admitted operations have ended. */
  close(): Promise<void> {
    this.closing = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }
}

/** Runs `fn` as one admitted operation. */
export async function admitted<T>(gate: ShutdownGate, what: string, fn: () => Promise<T>): Promise<T> {
  const end = gate.begin(what);
  try {
    return await fn();
  } finally {
    end();
  }
}
