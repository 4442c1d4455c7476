// Logical module names and archive paths. Every check here is pure: it returns a reason or
// throws AionError('invalid_package') naming the offending name or path; nothing is touched.
//
// A logical name is `[a-z0-9_]+` segments joined by `@` (CLI contract). It maps to the archive
// and project path `modules/<segments joined by '/'>.js`:  `a@b` ↔ `modules/a/b.js`.
// `$` is reserved: a deployed module is named `<logical name>$<version>`.
import { AionError } from '../errors.js';

/** Longest logical name accepted (UTF-8 bytes == characters, names being ASCII). */
export const MAX_NAME_LENGTH = 255;

const BAD_CHAR = /[^a-z0-9_@]/;

/** Why `name` is not a valid logical module name, or null when it is. */
export function logicalNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.includes('$')) return "contains '$', which is reserved for deployed names (<name>$<version>)";
  if (name.includes('..')) return "contains '..'";
  if (name.split('@').some((segment) => segment.length === 0)) return "has an empty segment (segments are joined by single '@')";
  const bad = BAD_CHAR.exec(name);
  if (bad) return `has an invalid character ${JSON.stringify(bad[0])} (allowed: a-z, 0-9 and _ in segments joined by @)`;
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  return null;
}

export function isLogicalName(name: unknown): name is string {
  return typeof name === 'string' && logicalNameProblem(name) === null;
}

/** Throws invalid_package `<where>: module name '<name>' <reason>` unless `name` is valid. */
export function checkLogicalName(name: string, where: string): void {
  const problem = logicalNameProblem(name);
  if (problem !== null) throw new AionError('invalid_package', `${where}: module name ${JSON.stringify(name)} ${problem}`);
}

/** `a@b` → `a/b.js` (relative to modules/). The name must already be valid. */
export function moduleRelativePath(name: string): string {
  return name.split('@').join('/') + '.js';
}

/** `a@b` → `modules/a/b.js`, the entry name inside an archive. */
export function moduleEntryPath(name: string): string {
  return 'modules/' + moduleRelativePath(name);
}

/**
 * `a/b.js` (relative to modules/) → `a@b`. Throws invalid_package naming `where` when the path
 * does not end in `.js` or does not map to a valid logical name (e.g. `@`, `$`, uppercase).
 */
export function moduleNameFromRelativePath(relative: string, where: string): string {
  if (!relative.endsWith('.js')) {
    throw new AionError('invalid_package', `${where}: only .js module files are allowed under modules/`);
  }
  const segments = relative.slice(0, -3).split('/');
  const withAt = segments.find((s) => s.includes('@'));
  if (withAt !== undefined) {
    throw new AionError('invalid_package', `${where}: path segment ${JSON.stringify(withAt)} contains '@' (use a directory instead)`);
  }
  const name = segments.join('@');
  checkLogicalName(name, where);
  return name;
}

/**
 * Why `path` is not a safe relative archive path, or null. Rejects empty paths, backslashes,
 * absolute paths, control characters, `..` (traversal) and empty or `.` segments. A single
 * trailing `/` (directory entry) is allowed.
 */
export function archivePathProblem(path: string): string | null {
  if (path.length === 0) return 'has an empty name';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'is an absolute path';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character';
  const segments = (path.endsWith('/') ? path.slice(0, -1) : path).split('/');
  if (segments.includes('..')) return "escapes the archive ('..' path traversal)";
  if (segments.some((s) => s === '' || s === '.')) return "has an empty or '.' path segment";
  return null;
}
