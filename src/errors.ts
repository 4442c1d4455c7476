// Typed errors shared by every layer. Each carries a stable string code (the contract's
// `error.code`), a message that names the concrete thing that caused it, optional details
// that appear in the JSON error document, and an optional hint naming the next step.

export type ErrorCode =
  | 'internal'
  | 'usage'
  | 'not_found'
  | 'version_pinned'
  | 'route_active'
  | 'invalid_package'
  | 'manifest_mismatch'
  | 'state_busy'
  | 'shutting_down'
  | 'store'
  | 'conflict'
  | 'timeout'
  | 'unavailable';

/** Exit code of each error code, fixed by the CLI contract. */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  internal: 1,
  usage: 2,
  not_found: 3,
  version_pinned: 4,
  route_active: 5,
  invalid_package: 6,
  manifest_mismatch: 7,
  state_busy: 8,
  shutting_down: 9,
  store: 10,
  conflict: 11,
  timeout: 12,
  unavailable: 13,
};

export interface ErrorOptions {
  /** Extra fields of the JSON error document (`error.<key>`). */
  details?: Record<string, unknown>;
  /** One line naming what to do next; shown to people, not in JSON. */
  hint?: string;
  cause?: unknown;
}

export class AionError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AionError';
    this.code = code;
    this.details = options.details ?? {};
    this.hint = options.hint;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function isAionError(value: unknown, code?: ErrorCode): value is AionError {
  return value instanceof AionError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into an AionError; unknown failures become `internal`. */
export function toAionError(error: unknown): AionError {
  if (error instanceof AionError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new AionError('internal', `unexpected failure: ${message}`, { cause: error });
}
