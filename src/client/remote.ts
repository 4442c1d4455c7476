// The client of a running `aion serve`: the same methods as the embedded engine, carried out by
// the server over its control socket (protocol in src/client/protocol.ts). Replies are rebuilt
// into the same results and the same typed errors, so a command prints the same output and
// exits with the same code either way. Imports nothing heavier than `net`: the remote path of
// a command never loads the engine, the store or LevelDB.
import net from 'node:net';
import { realpathSync, statSync } from 'node:fs';
import { AionError } from '../errors.js';
import { directoryIdentity, readHolder, type HolderInfo } from '../store/holder.js';
import { encodeLine, PROTOCOL_VERSION, wireToError, type Method, type RequestId } from './protocol.js';
import { bindOperations, OPERATIONS, type Operations } from './operations.js';
import type { Client } from './client.js';

const CONNECT_TIMEOUT_MS = 2000;

/** Connects to a Unix socket; rejects with the connect error (ENOENT, ECONNREFUSED, …). */
export function connectSocket(socketPath: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connecting to ${socketPath} timed out`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

/**
 * Refuses a control socket that another user owns: talking to it would hand our commands
 * (and archive paths) to their server. Returns false when there is no socket file there.
 */
export function checkSocketOwner(socketPath: string): boolean {
  let st;
  try {
    st = statSync(socketPath);
  } catch {
    return false;
  }
  if (!st.isSocket()) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AionError('state_busy', `the control socket ${socketPath} is owned by uid ${st.uid}, not by you (uid ${uid}); refusing to connect`, {
      details: { socket: socketPath, owner_uid: st.uid, uid },
      hint: 'the state directory is served by another user: use your own state directory',
    });
  }
  return true;
}

/** How long a server that accepted the connection has to answer `hello`. */
const HELLO_TIMEOUT_MS = 10_000;

/**
 * Connects to the live `aion serve` of this state directory that the holder file names, if
 * there is one: undefined when the holder names no socket, its socket is gone or refuses
 * connections (a stale file left by a server that was killed), the server does not answer
 * `hello`, or it serves another directory (the holder file came with a copy of the directory
 * it serves) — in every such case the holder file is stale for us and the caller proceeds
 * in-process. Fails `state_busy` for a socket owned by another user, `usage` for a server of
 * another protocol version.
 */
export async function connectServer(stateDir: string, holder: HolderInfo | undefined = readHolder(stateDir)): Promise<RemoteClient | undefined> {
  if (!holder?.socket || typeof holder.socket !== 'string') return undefined;
  if (!checkSocketOwner(holder.socket)) return undefined;
  let socket: net.Socket;
  try {
    socket = await connectSocket(holder.socket);
  } catch {
    return undefined;
  }
  const client = new RemoteClient(socket, { socket: holder.socket, pid: holder.pid, stateDir });
  let hello: Record<string, unknown> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    hello = await Promise.race([
      client.call<Record<string, unknown>>('hello', {}),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), HELLO_TIMEOUT_MS))),
    ]);
  } catch (error) {
    await client.close();
    if (error instanceof AionError && error.code === 'unavailable') return undefined;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  if (hello === undefined || !servesDirectory(hello, stateDir)) {
    await client.close();
    return undefined;
  }
  return client;
}

/**
 * Whether a server's `hello` names this state directory: the same directory identity (device
 * and inode, so a symlink or a moved directory is the same and a copy is not), or for a server
 * that does not state one, the same real path.
 */
function servesDirectory(hello: Record<string, unknown>, stateDir: string): boolean {
  if (typeof hello.state_dir_id === 'string') return hello.state_dir_id === directoryIdentity(stateDir);
  if (typeof hello.state_dir !== 'string') return false;
  try {
    return realpathSync(hello.state_dir) === realpathSync(stateDir);
  } catch {
    return false;
  }
}

/**
 * Whether a live `aion serve` of this state directory answers on the socket the holder names
 * (see connectServer; the probe is closed). The one test of "is the holder a live server".
 */
export async function serverAnswers(stateDir: string, holder: HolderInfo | undefined): Promise<boolean> {
  let client: RemoteClient | undefined;
  try {
    client = await connectServer(stateDir, holder);
  } catch (error) {
    // A server of another protocol version is live all the same.
    if (error instanceof AionError && error.code === 'usage') return true;
    throw error;
  }
  if (!client) return false;
  await client.close();
  return true;
}

interface Pending {
  method: Method;
  resolve: (value: unknown) => void;
  reject: (error: AionError) => void;
}

/** The operations of the table, each one request to the server (see `call`). */
export interface RemoteClient extends Operations {}
export class RemoteClient implements Client {
  private nextId = 1;
  private readonly pending = new Map<RequestId, Pending>();
  private buffer = '';
  private closed = false;
  /** Set once the connection is unusable: every later request fails with it. */
  private broken: AionError | undefined;
  /** Warnings the server raised while serving our requests. */
  onWarning?: (message: string) => void;

  constructor(
    private readonly socket: net.Socket,
    readonly server: { socket: string; pid: number; stateDir: string },
  ) {
    Object.assign(this, bindOperations((name, params) => this.call(name, params)));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => {
      // 'close' follows and fails whatever is pending.
    });
    socket.on('close', () => {
      if (this.closed) return;
      // Each request learns what the loss means for it: a mutation may or may not have
      // taken effect; a read changed nothing.
      this.broken ??= this.lost(undefined);
      for (const p of this.pending.values()) p.reject(this.lost(p.method));
      this.pending.clear();
    });
  }

  private lost(method: Method | undefined): AionError {
    const read = method !== undefined && !OPERATIONS[method].mutates;
    return new AionError('unavailable', `aion serve (pid ${this.server.pid}) went away before it replied; ${read ? `nothing was changed (${method} only reads)` : 'the operation may or may not have taken effect'}`, {
      details: { socket: this.server.socket, server_pid: this.server.pid, ...(method ? { method } : {}) },
      hint: read ? 'retry (it runs in-process once aion serve is gone)' : "check the outcome with 'aion versions', 'aion history' or 'aion show', then retry",
    });
  }

  private fail(error: AionError): void {
    this.broken ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() !== '') this.handleReply(line);
    }
  }

  private handleReply(line: string): void {
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(new AionError('internal', `aion serve (pid ${this.server.pid}) sent a reply that is not JSON`));
      this.socket.destroy();
      return;
    }
    if (reply.v !== PROTOCOL_VERSION) {
      this.fail(
        new AionError('usage', `protocol version mismatch: aion serve (pid ${this.server.pid}) speaks version ${JSON.stringify(reply.v ?? null)}, this aion speaks version ${PROTOCOL_VERSION}`, {
          details: { protocol_version: PROTOCOL_VERSION, server_version: reply.v ?? null },
          hint: 'use the same aion for the command and for aion serve (restart aion serve after upgrading)',
        }),
      );
      this.socket.destroy();
      return;
    }
    if (Array.isArray(reply.warnings)) {
      for (const w of reply.warnings) if (typeof w === 'string') this.onWarning?.(w);
    }
    const id = reply.id as RequestId | null;
    if (id === null || id === undefined) {
      // The server could not read one of our lines: nothing to match it with, so every
      // request outstanding on this connection fails with it.
      this.fail('error' in reply ? wireToError(reply.error) : new AionError('internal', 'aion serve sent a reply without an id'));
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if ('error' in reply) p.reject(wireToError(reply.error));
    else p.resolve(reply.result);
  }

  /** Sends one request and resolves with its result (rejects with the server's typed error). */
  call<T>(method: Method, params: Record<string, unknown>): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new AionError('internal', 'the client is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(encodeLine({ v: PROTOCOL_VERSION, id, method, params }));
    });
  }

  /** Closes the connection (never the server). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new AionError('internal', 'the client was closed before aion serve replied'));
    await new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      // Do not wait on a server that does not close its side.
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}
