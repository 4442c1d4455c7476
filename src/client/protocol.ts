// The control protocol of `aion serve`.
//
// While `aion serve` runs on a state directory it listens on a Unix domain socket, and every
// other `aion` command on that directory is carried out by it (see `openClient`).
//
// Where the socket is
//   `<state-dir>/run/control.sock` (file mode 0600, directory 0700). When that path is longer
//   than a Unix socket path may be (103 bytes, the smallest limit among the platforms we run
//   on), the socket is `<tmpdir>/aion-<uid>/<first 16 hex of sha256(real state dir path)>.sock`
//   instead, in a 0700 directory owned by the user. Either way the path is recorded in the
//   state directory's holder file (`holder.json`, field `socket`) once the server listens:
//   clients read it from there and never compute it. Before connecting, a client checks that
//   the socket file is owned by its own uid and refuses otherwise.
//
// Framing
//   Newline-delimited JSON over the stream, UTF-8: one request or reply per line. A line may
//   be at most 1 MiB (MAX_REQUEST_BYTES); a longer one gets an error reply and the connection
//   is closed. The server's other limits (connections, idle and request-line timeouts, replies
//   not taken, shutdown grace) are in src/server/limits.ts. Several requests may be sent on
//   one connection, also without waiting for replies: replies carry the request's `id` and
//   may come back in any order (the server throttles a connection by not reading it).
//
// Request
//   {"v": 1, "id": 7, "method": "load", "params": {"archive": "/abs/path/x.aion", "dry_run": false}}
//   `v` is the protocol version (PROTOCOL_VERSION); `id` is a number or string chosen by the
//   client; `params` is an object (may be omitted when a method takes none).
//
// Reply
//   {"v": 1, "id": 7, "result": {...}}                      the method's result
//   {"v": 1, "id": 7, "error": {"code", "message", "details", "hint"}}
//   `result` is exactly what the embedded engine returns (the CLI contract's JSON shapes).
//   `error.code` is the contract's error code, so the client rebuilds the same typed error
//   and the command exits with the same code and prints the same JSON as without a server.
//   A reply may also carry `"warnings": ["..."]`: warnings raised while serving the request,
//   which the client prints as it would have printed them itself.
//   A reply to a line that could not be read as a request has `"id": null`.
//
// Methods and params
//   Declared once, in the operation table (src/client/operations.ts): each method's params
//   with their types, and the engine operation it runs. `load` names the archive by absolute
//   path: the server reads it (same machine, same user). Unknown params are refused.
//
// Errors of the protocol itself (all `usage`, none changes any state or stops the server)
//   malformed JSON, a request that is not an object, a missing/invalid `id` or `method` or
//   `params`, an unknown method, wrong parameter types, a protocol version other than the
//   server's (the message names both versions), an `input` nested deeper than MAX_JSON_DEPTH
//   (src/json.ts), and an oversized line or one not completed in time (then the connection is
//   closed). A request cut off by the client disconnecting is dropped silently; a client
//   that disconnects before its reply does not stop the operation it asked for.
//   One connection too many gets a `state_busy` line with `"id": null`, then is closed.
//   Once the server begins shutting down, every new request gets `shutting_down`.
//
// This module is imported by clients: it must stay free of engine and store imports.
import { AionError, EXIT_CODES, type ErrorCode } from '../errors.js';
import { isOperation, METHODS, PROTOCOL_VERSION, type OperationName } from './operations.js';

export { METHODS, PROTOCOL_VERSION };
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** sun_path is 108 bytes on Linux and 104 on macOS, both including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 103;

export type Method = OperationName;

export type RequestId = number | string;

export interface Request {
  v: number;
  id: RequestId;
  method: Method;
  params: Record<string, unknown>;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
  hint?: string;
}

export type Reply =
  | { v: number; id: RequestId | null; result: unknown; warnings?: string[] }
  | { v: number; id: RequestId | null; error: WireError; warnings?: string[] };

export function errorToWire(error: AionError): WireError {
  return {
    code: error.code,
    message: error.message,
    details: error.details,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
  };
}

/** Rebuilds the typed error a server sent; an unknown code becomes `internal`. */
export function wireToError(wire: unknown): AionError {
  const w = (wire ?? {}) as Partial<WireError>;
  const known = typeof w.code === 'string' && Object.prototype.hasOwnProperty.call(EXIT_CODES, w.code);
  const message = typeof w.message === 'string' ? w.message : 'aion serve replied with an error without a message';
  const details = w.details !== null && typeof w.details === 'object' && !Array.isArray(w.details) ? w.details : {};
  return new AionError(known ? w.code! : 'internal', known ? message : `aion serve replied with unknown error code '${String(w.code)}': ${message}`, {
    details,
    hint: typeof w.hint === 'string' ? w.hint : undefined,
  });
}

export function encodeLine(value: unknown): string {
  return JSON.stringify(value) + '\n';
}

/**
 * Splits a byte stream into lines without ever holding more than `maxLine` bytes of an
 * unfinished line. `push` returns the complete lines in a chunk, or `overflow` once the
 * pending line exceeds the limit (the splitter then stays overflowed). The unfinished line is
 * kept in one buffer that grows by doubling (never past `maxLine`), so a line sent a byte at a
 * time costs its bytes, not an object per chunk.
 */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);
  private pendingBytes = 0;
  overflowed = false;

  constructor(private readonly maxLine: number) {}

  push(chunk: Buffer): { lines: string[]; overflow: boolean } {
    const lines: string[] = [];
    if (this.overflowed) return { lines, overflow: true };
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      if (this.pendingBytes + piece.length > this.maxLine) {
        this.overflowed = true;
        return { lines, overflow: true };
      }
      if (this.pendingBytes === 0) {
        lines.push(piece.toString('utf8'));
      } else {
        this.append(piece);
        lines.push(this.pending.toString('utf8', 0, this.pendingBytes));
        this.pendingBytes = 0;
        // A large buffer is not kept around for the next (usually small) line.
        if (this.pending.length > 64 * 1024) this.pending = Buffer.alloc(0);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.maxLine) {
        this.overflowed = true;
        return { lines, overflow: true };
      }
      // Copied: the stream may reuse the chunk's memory.
      this.append(rest);
    }
    return { lines, overflow: false };
  }

  private append(bytes: Buffer): void {
    const needed = this.pendingBytes + bytes.length;
    if (needed > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxLine, Math.max(needed, 2 * this.pending.length, 4096)));
      this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    bytes.copy(this.pending, this.pendingBytes);
    this.pendingBytes = needed;
  }

  /** Whether an unfinished line is buffered (a half-sent request). */
  get hasPartial(): boolean {
    return this.pendingBytes > 0;
  }
}

/**
 * Reads one request line. Returns the request, or a `usage` error together with whatever
 * id could be recovered (null when none).
 */
export function parseRequest(line: string): { request: Request } | { error: AionError; id: RequestId | null } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (error) {
    return { id: null, error: new AionError('usage', `malformed request: not JSON (${(error as Error).message})`, { hint: `send one JSON object per line: {"v":${PROTOCOL_VERSION},"id":1,"method":"hello","params":{}}` }) };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { id: null, error: new AionError('usage', 'malformed request: not a JSON object') };
  }
  const r = raw as Record<string, unknown>;
  const id = typeof r.id === 'number' || typeof r.id === 'string' ? r.id : null;
  if (id === null) return { id: null, error: new AionError('usage', "malformed request: 'id' must be a number or a string") };
  if (r.v !== PROTOCOL_VERSION) {
    return {
      id,
      error: new AionError('usage', `protocol version mismatch: the request speaks version ${JSON.stringify(r.v ?? null)}, this aion serve speaks version ${PROTOCOL_VERSION}`, {
        details: { protocol_version: PROTOCOL_VERSION, request_version: r.v ?? null },
        hint: 'use the same aion for the command and for aion serve (restart aion serve after upgrading)',
      }),
    };
  }
  if (typeof r.method !== 'string') return { id, error: new AionError('usage', "malformed request: 'method' must be a string") };
  if (!isOperation(r.method)) {
    return { id, error: new AionError('usage', `unknown method '${r.method}'`, { details: { methods: [...METHODS] } }) };
  }
  const params = r.params ?? {};
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return { id, error: new AionError('usage', "malformed request: 'params' must be an object") };
  }
  return { request: { v: PROTOCOL_VERSION, id, method: r.method, params: params as Record<string, unknown> } };
}
