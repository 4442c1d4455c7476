// The one interface commands talk to: the engine embedded in this process, or a running
// `aion serve` answering the same methods over its control socket (src/client/remote.ts).
import type { Engine } from '../engine/engine.js';
import { readHolder, type HolderInfo } from '../store/holder.js';
import { AionError } from '../errors.js';
import { bindOperations, runOperation, type Operations } from './operations.js';

/** One method per operation of the table (src/client/operations.ts), plus close. */
export interface Client extends Operations {
  close(): Promise<void>;
}

export interface ClientOptions {
  stateDir: string;
  /** A shared store (postgres://…): the engine always runs in this process, against it. */
  store?: string;
  lockTimeoutMs: number;
  /** The command writes: create the state directory if it does not exist. */
  write: boolean;
  /** Describes this process to other waiters (e.g. `aion load hello.aion`). */
  command: string;
  onWait?: (holder: HolderInfo | undefined, position?: number) => void;
  onWarning?: (message: string) => void;
  /**
   * The command drives runs (start, signal, terminate): the state directory is let go of while
   * they wait on user code, so other processes never wait behind an activity.
   */
  drivesRuns?: boolean;
}

/** How long a command driving runs keeps the state directory unused before letting go of it. */
export const RELEASE_IDLE_MS = 25;

/** The engine in this process: each operation validated and run exactly as `aion serve` runs it. */
export interface EmbeddedClient extends Operations {}
export class EmbeddedClient implements Client {
  constructor(readonly engine: Engine) {
    Object.assign(this, bindOperations((name, params, local) => runOperation(engine, name, params, local)));
  }
  close() {
    return this.engine.close();
  }
}

/** Thrown from the lock wait to switch to a server that turned out to hold the directory. */
class SwitchToServer extends Error {
  constructor(readonly client: Client) {
    super('switching to aion serve');
  }
}

/**
 * Opens the client for a state directory. When the directory's holder file names the control
 * socket of a live `aion serve`, the client talks to it (the engine is not even imported);
 * otherwise the directory is opened in this process, waiting for its lock as the options say —
 * and if the process we wait for turns out to be a server, we switch to its socket.
 */
export async function openClient(options: ClientOptions): Promise<Client> {
  if (options.store) {
    // Every process of a fleet talks to the database itself: no holder file, no socket.
    const { Engine } = await import('../engine/engine.js');
    const engine = await Engine.open({ stateDir: options.stateDir, store: options.store, create: options.write, lockTimeoutMs: options.lockTimeoutMs, command: options.command, onWarning: options.onWarning });
    return new EmbeddedClient(engine);
  }
  // Only a holder that names a socket can be a server; the remote client (net, protocol) is
  // imported only then, and on the waiting path below.
  const holder = readHolder(options.stateDir);
  if (holder?.socket) {
    const { connectServer } = await import('./remote.js');
    const remote = await connectServer(options.stateDir, holder);
    if (remote) {
      remote.onWarning = options.onWarning;
      return remote;
    }
  }
  const { Engine } = await import('../engine/engine.js');
  let opened = false;
  try {
    const engine = await Engine.open({
      stateDir: options.stateDir,
      create: options.write,
      lockTimeoutMs: options.lockTimeoutMs,
      command: options.command,
      onWait: options.onWait,
      onWarning: options.onWarning,
      releaseIdleMs: options.drivesRuns ? RELEASE_IDLE_MS : undefined,
      whileWaiting: async (holder) => {
        if (!holder?.socket) return;
        if (opened) {
          // Taking the directory back, mid-run: a server took it meanwhile and recovers the run.
          const { serverAnswers } = await import('./remote.js');
          if (await serverAnswers(options.stateDir, holder)) {
            throw new AionError('state_busy', `the state directory is now served by aion serve (pid ${holder.pid}), which carries on with the runs of this command`, {
              details: { holder },
              hint: 'see where the run is with: aion show <workflow_id>',
            });
          }
          return;
        }
        const { connectServer } = await import('./remote.js');
        const server = await connectServer(options.stateDir, holder);
        if (server) {
          server.onWarning = options.onWarning;
          throw new SwitchToServer(server);
        }
      },
    });
    opened = true;
    return new EmbeddedClient(engine);
  } catch (error) {
    if (error instanceof SwitchToServer) return error.client;
    throw error;
  }
}
