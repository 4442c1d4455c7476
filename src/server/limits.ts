// The limits of `aion serve`'s control socket, in one place. Each can be lowered (or raised)
// through its environment variable, read once at start-up — the tests use that to exercise
// them quickly; operators should not need to.
//
// What each bounds, and what happens at the bound:
//   maxConnections          connections open at once; one more gets a `state_busy` error line
//                           and is closed (the command exits 8; retry later)
//   maxInFlight             requests of one connection being carried out at once; beyond it,
//                           further lines wait in the connection's queue and the connection
//                           is not read from (pipelining is throttled, never refused)
//   maxUnflushedBytes       reply bytes of one connection not yet taken by the client; beyond
//                           it the connection is not read from until its replies drain, so a
//                           client that never reads its replies cannot grow the server
//   idleTimeoutMs           a connection with nothing in flight that neither sends nor takes a
//                           byte for this long is closed (silently)
//   requestLineTimeoutMs    a request line must be complete this long after its first byte;
//                           otherwise a `usage` error line is sent and the connection closed
//   shutdownGraceMs         after SIGINT/SIGTERM, how long requests in flight (and the engine's
//                           admitted operations) are waited for; then connections are
//                           destroyed and the process exits 0 with a warning naming what was
//                           abandoned (its outcome is as after a crash: recovered at the next
//                           start, `aion doctor` checks it)
// Per connection the server holds at most one partial request line (MAX_REQUEST_BYTES, 1 MiB)
// plus the complete lines of the last chunk read, and about maxUnflushedBytes of replies
// (one reply may be larger: it is never cut).

function fromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export const SOCKET_LIMITS = Object.freeze({
  maxConnections: fromEnv('AION_SERVE_MAX_CONNECTIONS', 64),
  maxInFlight: fromEnv('AION_SERVE_MAX_IN_FLIGHT', 16),
  maxUnflushedBytes: fromEnv('AION_SERVE_MAX_UNFLUSHED_BYTES', 1024 * 1024),
  idleTimeoutMs: fromEnv('AION_SERVE_IDLE_TIMEOUT_MS', 10 * 60_000),
  requestLineTimeoutMs: fromEnv('AION_SERVE_LINE_TIMEOUT_MS', 30_000),
  shutdownGraceMs: fromEnv('AION_SERVE_SHUTDOWN_GRACE_MS', 10_000),
});

export type SocketLimits = typeof SOCKET_LIMITS;
