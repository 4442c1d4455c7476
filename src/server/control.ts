// The control socket of `aion serve`: accepts connections, reads newline-delimited JSON
// requests (src/client/protocol.ts) and carries each one out on the serving engine through
// the operation table (src/client/operations.ts) an embedded command uses in-process, so
// params are checked and results and typed errors are the engine's own. Requests are dispatched as they arrive — concurrently, across and within
// connections; nothing here serializes them, so a request waits only for the engine's own
// locks (the deploy lock of a mutation, the lock of one workflow id). Bad input of any kind
// gets an error reply (or, for a half-sent request, silence) and never reaches the engine.
//
// Limits (src/server/limits.ts): at most SOCKET_LIMITS.maxConnections connections (one more
// gets a `state_busy` line and is closed); a connection is read from only while it has fewer
// than maxInFlight requests running, nothing queued and at most maxUnflushedBytes of replies
// its client has not taken (backpressure: a client that never reads its replies stops being
// read, so it cannot grow the server); a connection idle for idleTimeoutMs is closed, and one
// whose request line is not complete requestLineTimeoutMs after it began gets a `usage` line
// and is closed.
//
// Draining (`drain`, from SIGINT/SIGTERM until `close`): the socket keeps listening and read
// operations (the operation table's `mutates: false`: versions, runs, show, status, history,
// hello …) are still answered; every mutation is refused with `shutting_down`.
// Shutdown (`close`): new requests are refused with `shutting_down`, the listening socket is
// closed (and its file removed), requests in flight are waited for — until the shutdown
// deadline (SOCKET_LIMITS.shutdownGraceMs by default), no longer — then every connection is
// closed. Requests still running then are abandoned: their replies are dropped.
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import net from 'node:net';
import { AionError, toAionError } from '../errors.js';
import { OPERATIONS, runOperation } from '../client/operations.js';
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
import { SOCKET_LIMITS } from './limits.js';

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
  /** Complete request lines read but not yet dispatched (from `head` on). */
  queue: string[];
  head: number;
  /** Reading is paused (backpressure). */
  paused: boolean;
  /** Last time a byte was read, a reply written or flushed, or a request finished. */
  lastActive: number;
  /** When the unfinished request line now buffered began (undefined: none). */
  partialSince: number | undefined;
  /** Being closed by us: nothing more is read or dispatched. */
  closing: boolean;
  splitter: LineSplitter;
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private inFlight = 0;
  /** Closing: every request is refused, no connection accepted. */
  private stopping = false;
  /** Draining: mutations are refused, reads answered. */
  private draining = false;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private socketIno: number | undefined;
  private readonly sweeper: NodeJS.Timeout;

  private constructor(private readonly options: ControlOptions) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    const every = Math.max(50, Math.min(1000, SOCKET_LIMITS.idleTimeoutMs / 4, SOCKET_LIMITS.requestLineTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Requests being carried out now (after `close`, those abandoned). */
  get inFlightCount(): number {
    return this.inFlight;
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
    socket.on('error', () => {
      // A client that vanishes (ECONNRESET, EPIPE) only loses its replies.
    });
    const max = SOCKET_LIMITS.maxConnections;
    if (this.connections.size >= max) {
      // Never read from: one error line, then closed.
      const busy = new AionError('state_busy', `aion serve is at its limit of at most ${max} connections at once; try again shortly`, {
        details: { max_connections: max },
        hint: 'retry in a moment; if it persists, find the client holding connections open',
      });
      socket.end(encodeLine({ v: PROTOCOL_VERSION, id: null, error: errorToWire(busy) }));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const conn: Connection = {
      socket,
      inFlight: 0,
      ended: false,
      queue: [],
      head: 0,
      paused: false,
      lastActive: Date.now(),
      partialSince: undefined,
      closing: false,
      splitter: new LineSplitter(MAX_REQUEST_BYTES),
    };
    this.connections.add(conn);
    socket.on('close', () => this.connections.delete(conn));
    socket.on('drain', () => {
      conn.lastActive = Date.now();
      this.pump(conn);
    });
    socket.on('data', (chunk: Buffer) => {
      const now = Date.now();
      conn.lastActive = now;
      if (conn.closing || conn.splitter.overflowed) return;
      const { lines, overflow } = conn.splitter.push(chunk);
      for (const line of lines) conn.queue.push(line);
      // The buffered partial line (if any) began in this chunk when a line ended in it.
      conn.partialSince = !conn.splitter.hasPartial ? undefined : lines.length > 0 ? now : (conn.partialSince ?? now);
      this.pump(conn);
      if (overflow) {
        this.closeWith(
          conn,
          new AionError('usage', `request too large: a request line may be at most ${MAX_REQUEST_BYTES} bytes; closing the connection`, {
            details: { max_request_bytes: MAX_REQUEST_BYTES },
          }),
        );
      }
    });
    socket.on('end', () => {
      // Whatever unfinished line is buffered is a half-sent request: dropped.
      conn.ended = true;
      conn.partialSince = undefined;
      this.pump(conn);
    });
  }

  /**
   * Dispatches queued lines while the connection is under its limits, and reads from it only
   * while nothing is queued and it is under them (otherwise it is paused until a request
   * finishes or its replies drain). Ends our side once the client has ended and all is done.
   */
  private pump(conn: Connection): void {
    const { socket } = conn;
    const over = () => conn.inFlight >= SOCKET_LIMITS.maxInFlight || socket.writableLength > SOCKET_LIMITS.maxUnflushedBytes;
    while (conn.head < conn.queue.length && !conn.closing && !over()) {
      const line = conn.queue[conn.head]!;
      conn.queue[conn.head++] = '';
      this.handleLine(conn, line);
    }
    if (conn.head === conn.queue.length) {
      conn.queue = [];
      conn.head = 0;
    }
    if (conn.closing) return;
    const hold = conn.queue.length > 0 || over();
    if (hold && !conn.paused) {
      conn.paused = true;
      socket.pause();
    } else if (!hold && conn.paused) {
      conn.paused = false;
      // Time spent paused does not count against a request line.
      if (conn.partialSince !== undefined) conn.partialSince = Date.now();
      socket.resume();
    }
    if (conn.ended && conn.inFlight === 0 && conn.queue.length === 0) socket.end();
  }

  /** Sends one error line and closes the connection (destroyed if the client does not take it). */
  private closeWith(conn: Connection, error: AionError): void {
    if (conn.closing) return;
    this.send(conn, { v: PROTOCOL_VERSION, id: null, error: errorToWire(error) });
    this.drop(conn);
  }

  private drop(conn: Connection): void {
    conn.closing = true;
    conn.queue = [];
    conn.head = 0;
    conn.socket.end();
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }

  /** Closes connections past their idle or request-line timeout. */
  private sweep(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (conn.closing) continue;
      if (conn.partialSince !== undefined && !conn.paused && now - conn.partialSince > SOCKET_LIMITS.requestLineTimeoutMs) {
        const seconds = SOCKET_LIMITS.requestLineTimeoutMs / 1000;
        this.closeWith(conn, new AionError('usage', `request line not completed within ${seconds}s of its first byte; closing the connection`, {
          details: { request_line_timeout_ms: SOCKET_LIMITS.requestLineTimeoutMs },
        }));
      } else if (conn.inFlight === 0 && now - conn.lastActive > SOCKET_LIMITS.idleTimeoutMs) {
        // Nothing running, nothing read or flushed for that long (a client that stopped reading
        // its replies included): closed without a word.
        this.drop(conn);
      }
    }
  }

  private handleLine(conn: Connection, line: string): void {
    if (line.trim() === '') return;
    const parsed = parseRequest(line);
    if ('error' in parsed) {
      this.send(conn, { v: PROTOCOL_VERSION, id: parsed.id, error: errorToWire(parsed.error) });
      return;
    }
    const request = parsed.request;
    if (this.stopping || (this.draining && OPERATIONS[request.method].mutates)) {
      this.send(conn, {
        v: PROTOCOL_VERSION,
        id: request.id,
        error: errorToWire(new AionError('shutting_down', `aion serve is shutting down and refuses new work (${request.method}); reads are still answered while it drains`, {
          hint: 'retry once aion serve has stopped or restarted',
        })),
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
        conn.lastActive = Date.now();
        this.pump(conn);
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
    conn.lastActive = Date.now();
    s.write(line);
  }

  /** Carries out one request on the serving engine (params validated by the operation table). */
  private dispatch(request: Request): Promise<unknown> {
    return runOperation(this.options.engine, request.method, request.params);
  }

  /**
   * Begins the drain: from now on mutations are refused (`shutting_down`) while reads are
   * still answered, and connections still accepted, until `close`. Idempotent.
   */
  drain(): void {
    this.draining = true;
  }

  /**
   * Stops serving: refuses new requests (`shutting_down`), stops accepting connections and
   * removes the socket file, waits for the requests in flight until `deadline` (ms since the
   * epoch; default: SOCKET_LIMITS.shutdownGraceMs from now), then closes every connection.
   * Requests still running then are abandoned (`inFlightCount` says how many). Idempotent:
   * the first call's deadline holds.
   */
  close(deadline = Date.now() + SOCKET_LIMITS.shutdownGraceMs): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      clearInterval(this.sweeper);
      // Closes the listening handle now ('close' itself waits for connections: not awaited).
      this.server.close(() => {});
      this.removeSocketFile();
      if (this.inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (this.drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
        ]);
        clearTimeout(timer);
      }
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
