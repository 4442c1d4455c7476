// The archive limit options of `load` and `inspect` (and the startup packages of `serve`):
// --max-archive-bytes, --max-inflated-bytes, --max-entries, else AION_MAX_ARCHIVE_BYTES,
// AION_MAX_INFLATED_BYTES, AION_MAX_ENTRIES; absent, the package reader's defaults
// (src/package/types.ts DEFAULT_LIMITS). A value is a whole number ≥ 1, optionally with a
// binary suffix (K, M, G: 512M is 512 MiB); anything else is a usage error naming the flag
// or variable, raised before any archive is opened.
import { usageError } from './output.js';

export interface LimitOptions {
  maxArchiveBytes?: string;
  maxInflatedBytes?: string;
  maxEntries?: string;
}

/** The limits as the engine's and the package reader's fields (only those given). */
export interface ArchiveLimits {
  maxArchiveBytes?: number;
  maxInflatedBytes?: number;
  maxEntries?: number;
}

const FIELDS = [
  ['maxArchiveBytes', '--max-archive-bytes', 'AION_MAX_ARCHIVE_BYTES'],
  ['maxInflatedBytes', '--max-inflated-bytes', 'AION_MAX_INFLATED_BYTES'],
  ['maxEntries', '--max-entries', 'AION_MAX_ENTRIES'],
] as const;

const SUFFIX: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

function parseLimit(text: string, name: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text.trim());
  const n = m ? Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`${name} must be a whole number ≥ 1 (optionally with K, M or G), got '${text}'`, `e.g. ${name.startsWith('-') ? `${name} 512M` : `${name}=512M`}`);
  return n;
}

export function resolveLimitOptions(opts: LimitOptions, env: NodeJS.ProcessEnv = process.env): ArchiveLimits {
  const out: ArchiveLimits = {};
  for (const [field, flag, variable] of FIELDS) {
    const given = opts[field];
    if (given !== undefined) out[field] = parseLimit(given, flag);
    else if (env[variable] !== undefined && env[variable] !== '') out[field] = parseLimit(env[variable]!, variable);
  }
  return out;
}

/** The options on a commander command. */
export function limitOptionHelp(): [string, string][] {
  return [
    ['--max-archive-bytes <n>', 'largest archive file accepted (default 256M; env AION_MAX_ARCHIVE_BYTES)'],
    ['--max-inflated-bytes <n>', 'largest total size of its entries once inflated (default 512M; env AION_MAX_INFLATED_BYTES)'],
    ['--max-entries <n>', 'most entries in the archive (default 10000; env AION_MAX_ENTRIES)'],
  ];
}
