// Small concurrency primitives shared by the engine layers.

/** A FIFO async mutex. `lock()` resolves to a release function; release is idempotent. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = false;

  get locked(): boolean {
    return this.held;
  }

  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held = false;
      release();
    };
  }

  /** Runs `fn` holding the lock; the lock is released on every path. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * One FIFO mutex per key, forgotten once nobody holds or waits for it (so a server that has
 * driven a million workflows keeps no lock for each). `run` releases on every path.
 */
export class KeyedMutex {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.locks.get(key);
    if (!entry) this.locks.set(key, (entry = { mutex: new Mutex(), users: 0 }));
    entry.users++;
    try {
      return await entry.mutex.run(fn);
    } finally {
      if (--entry.users === 0 && this.locks.get(key) === entry) this.locks.delete(key);
    }
  }

  /** Keys held or waited for now (a diagnostic). */
  get size(): number {
    return this.locks.size;
  }
}
