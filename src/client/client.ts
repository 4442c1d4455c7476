// The one interface commands talk to: the engine embedded in this process, or a running
// `aion serve` answering the same methods over its control socket (src/client/remote.ts).
import type { Engine } from '../engine/engine.js';
import { readHolder, type HolderInfo } from '../store/holder.js';
import { bindOperations, runOperation, type Operations } from './operations.js';

/** One method per operation of the table (src/client/operations.ts), plus close. */
export interface Client extends Operations {
  close(): Promise<void>;
}

export interface ClientOptions {
  stateDir: string;
  lockTimeoutMs: number;
  /** The command writes: create the state directory if it does not exist. */
  write: boolean;
  /** Describes this process to other waiters (e.g. `aion load hello.aion`). */
  command: string;
  onWait?: (holder: HolderInfo | undefined) => void;
  onWarning?: (message: string) => void;
}

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
  try {
    const engine = await Engine.open({
      stateDir: options.stateDir,
      create: options.write,
      lockTimeoutMs: options.lockTimeoutMs,
      command: options.command,
      onWait: options.onWait,
      onWarning: options.onWarning,
      whileWaiting: async (holder) => {
        if (!holder?.socket) return;
        const { connectServer } = await import('./remote.js');
        const server = await connectServer(options.stateDir, holder);
        if (server) {
          server.onWarning = options.onWarning;
          throw new SwitchToServer(server);
        }
      },
    });
    return new EmbeddedClient(engine);
  } catch (error) {
    if (error instanceof SwitchToServer) return error.client;
    throw error;
  }
}
