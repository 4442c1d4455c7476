// The control socket of `aion serve`: accepts connections, reads newline-delimited JSON
// requests (src/client/protocol.ts) and carries each one out on the serving engine through
// the operation table (src/client/operations.ts) an embedded command uses in-process, so
// params are checked and results and typed errors are the engine's own. Requests are dispatched as they arrive — concurrently, across and within
// connections; nothing here serializes them, so a request waits only for the engine's own
// locks (the deploy lock of a mutation, the lock of one workflow id). Bad input of any kind
// gets an error reply (or, for a half-sent request, silence) and never reaches the engine.
//
// Shutdown (`close`): new requests are refused with `shutting_down`, the listening socket is
// closed (and its file removed), requests in flight are waited for, then every connection is
// closed.
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import net from 'node:net';
import { AionError, toAionError } from '../errors.js';
import { runOperation } from '../client/operations.js';
import type { Engine } from '../engine/engine.js';
import {
  encodeLine,
  errorToWire,
  LineSplitter,
  MAX_REQUEST_BYTES,
  parseRequest,
  PROTOCOL_VERSION,
  type Request,
  type RequestId,
} from '../client/protocol.js';

/** Warnings raised while serving a request are collected here and sent back with its reply. */
export const requestWarnings = new AsyncLocalStorage<string[]>();

/**
 * The serving engine's warning sink: a warning raised on behalf of a request (in its async
 * context) also travels back with the reply, so the command prints it as it would have
 * printed it itself. Warnings of the serving loop only reach `print`.
 */
export function forwardingWarnings(print?: (message: string) => void): (message: string) => void {
  return (message) => {
    requestWarnings.getStore()?.push(message);
    print?.(message);
  };
}

export interface ControlOptions {
  engine: Engine;
  stateDir: string;
  socketPath: string;
  /** Called after each request has been carried out (the serving loop re-checks its timers). */
  onRequestDone?: () => void;
}

interface Connection {
  socket: net.Socket;
  inFlight: number;
  /** The client has finished sending: close our side once the last reply is written. */
  ended: boolean;
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private inFlight = 0;
  private stopping = false;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private socketIno: number | undefined;

  private constructor(private readonly options: ControlOptions) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  /** Listens on the socket path (its directory must be ready and no file in the way). */
  static async listen(options: ControlOptions): Promise<ControlServer> {
    const control = new ControlServer(options);
    await new Promise<void>((resolve, reject) => {
      control.server.once('error', reject);
      // The bind happens within listen(): a restrictive umask makes the socket owner-only
      // from its first moment (its directory already is).
      const umask = process.umask(0o177);
      try {
        control.server.listen(options.socketPath, () => {
          control.server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    }).catch((error: unknown) => {
      throw new AionError('store', `cannot listen on the control socket ${options.socketPath}: ${(error as Error).message}`, { cause: error });
    });
    chmodSync(options.socketPath, 0o600);
    control.socketIno = lstatSync(options.socketPath).ino;
    control.server.on('error', () => {
      // Errors of an established listener (none expected) must not bring the engine down.
    });
    return control;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const conn: Connection = { socket, inFlight: 0, ended: false };
    this.connections.add(conn);
    const splitter = new LineSplitter(MAX_REQUEST_BYTES);
    socket.on('error', () => {
      // A client that vanishes (ECONNRESET, EPIPE) only loses its replies.
    });
    socket.on('close', () => this.connections.delete(conn));
    socket.on('data', (chunk: Buffer) => {
      if (splitter.overflowed) return;
      const { lines, overflow } = splitter.push(chunk);
      for (const line of lines) this.handleLine(conn, line);
      if (overflow) {
        this.send(conn, {
          v: PROTOCOL_VERSION,
          id: null,
          error: errorToWire(
            new AionError('usage', `request too large: a request line may be at most ${MAX_REQUEST_BYTES} bytes; closing the connection`, {
              details: { max_request_bytes: MAX_REQUEST_BYTES },
            }),
          ),
        });
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }
    });
    socket.on('end', () => {
      // Whatever unfinished line is buffered is a half-sent request: dropped.
      conn.ended = true;
      if (conn.inFlight === 0) socket.end();
    });
  }

  private handleLine(conn: Connection, line: string): void {
    if (line.trim() === '') return;
    const parsed = parseRequest(line);
    if ('error' in parsed) {
      this.send(conn, { v: PROTOCOL_VERSION, id: parsed.id, error: errorToWire(parsed.error) });
      return;
    }
    const request = parsed.request;
    if (this.stopping) {
      this.send(conn, {
        v: PROTOCOL_VERSION,
        id: request.id,
        error: errorToWire(new AionError('shutting_down', `aion serve is shutting down and refuses new work (${request.method})`, { hint: 'retry once aion serve has stopped or restarted' })),
      });
      return;
    }
    this.inFlight++;
    conn.inFlight++;
    const warnings: string[] = [];
    void requestWarnings
      .run(warnings, () => this.dispatch(request))
      .then(
        (result) => this.reply(conn, request.id, { result }, warnings),
        (error: unknown) => this.reply(conn, request.id, { error: errorToWire(toAionError(error)) }, warnings),
      )
      .finally(() => {
        conn.inFlight--;
        this.inFlight--;
        if (conn.ended && conn.inFlight === 0) conn.socket.end();
        if (this.inFlight === 0) this.drained?.();
        try {
          this.options.onRequestDone?.();
        } catch {
          // A notification must not break a reply.
        }
      });
  }

  private reply(conn: Connection, id: RequestId, body: { result: unknown } | { error: ReturnType<typeof errorToWire> }, warnings: string[]): void {
    const extra = warnings.length > 0 ? { warnings } : {};
    let line: string;
    try {
      line = encodeLine({ v: PROTOCOL_VERSION, id, ...body, ...extra });
    } catch (error) {
      line = encodeLine({ v: PROTOCOL_VERSION, id, error: errorToWire(toAionError(error)), ...extra });
    }
    this.write(conn, line);
  }

  private send(conn: Connection, value: unknown): void {
    this.write(conn, encodeLine(value));
  }

  private write(conn: Connection, line: string): void {
    const s = conn.socket;
    if (s.destroyed || !s.writable) return;
    s.write(line);
  }

  /** Carries out one request on the serving engine (params validated by the operation table). */
  private dispatch(request: Request): Promise<unknown> {
    return runOperation(this.options.engine, request.method, request.params);
  }

  /**
   * Stops serving: refuses new requests (`shutting_down`), stops accepting connections and
   * removes the socket file, waits for the requests in flight, then closes every connection.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      // Closes the listening handle now ('close' itself waits for connections: not awaited).
      this.server.close(() => {});
      this.removeSocketFile();
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      for (const conn of this.connections) conn.socket.destroy();
      this.connections.clear();
    })();
    return this.closing;
  }

  /** Removes the socket file if it is still the one we bound (libuv usually did already). */
  private removeSocketFile(): void {
    try {
      if (lstatSync(this.options.socketPath).ino === this.socketIno) rmSync(this.options.socketPath, { force: true });
    } catch {
      // Already gone.
    }
  }
}
