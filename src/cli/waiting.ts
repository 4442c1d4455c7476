// Waiting for a version's state, shared by `aion wait` and `aion unload --wait`: durations
// as operators type them, and a poll loop that opens the client afresh for every look, so the
// state directory is never held between polls (the runs we wait for need it to finish).
import { AionError } from '../errors.js';
import type { Client } from '../client/client.js';
import type { HoldersOutcome, VersionInfo } from '../engine/types.js';
import { withClient } from './client.js';
import type { CommandContext } from './context.js';
import { usageError } from './output.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `90s`, `10m`, `1h`, `500ms`, `1h30m`, or a bare number of seconds → milliseconds.
 * Anything else (negative, empty, unknown unit) is `usage` naming the option.
 */
export function parseDuration(text: string, option: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(t) ? [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)] : [];
  if (parts.length === 0) throw usageError(`${option} must be a duration like 90s, 10m, 1h or 500ms, got '${text}'`);
  return Math.round(parts.reduce((ms, [, n, unit]) => ms + Number(n) * UNITS[unit!]!, 0));
}

export function describeMs(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One look at a version: its holders (which resolves the prefix) and its `versions` entry. */
export interface VersionLook {
  version: string;
  entry: VersionInfo | undefined;
  holders: HoldersOutcome;
}

/** Looks at a loaded version; undefined once it is not loaded (any more). */
export async function lookAt(client: Client, workflowType: string, ref: string): Promise<VersionLook | undefined> {
  let holders: HoldersOutcome;
  try {
    holders = await client.holders({ workflow_type: workflowType, version: ref });
  } catch (error) {
    if (error instanceof AionError && error.code === 'not_found') return undefined;
    throw error;
  }
  const entry = (await client.versions({ workflow_type: workflowType }).catch(() => [] as VersionInfo[])).find((v) => v.version === holders.version);
  return { version: holders.version, entry, holders };
}

export interface PollOptions {
  timeoutMs: number | undefined;
  intervalMs: number;
  command: string;
}

/**
 * Calls `check` with a fresh client until it returns a value (then resolves with it) or the
 * timeout passes (then `onTimeout` builds the error from the last look). `check` may throw to
 * stop at once (a version that is not loaded, a usage error).
 */
export async function poll<T, L>(
  ctx: CommandContext,
  options: PollOptions,
  check: (client: Client) => Promise<{ done: T } | { look: L }>,
  onTimeout: (last: L) => AionError,
): Promise<T> {
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  for (;;) {
    const r = await withClient(ctx, { write: false, command: options.command }, check);
    if ('done' in r) return r.done;
    if (deadline !== undefined && Date.now() >= deadline) throw onTimeout(r.look);
    await sleep(deadline === undefined ? options.intervalMs : Math.max(0, Math.min(options.intervalMs, deadline - Date.now())));
  }
}
