// Resolution of `require(spec)` inside workflow modules. A logical name `a@b@c` lives at the
// path `a/b/c.js`; a spec is resolved against the requiring module's directory and must land
// on another module of the SAME package version. Nothing else (builtins, `node:` specs,
// absolute paths, bare package names, other versions) can ever be required.

const SEGMENT = /^[a-z0-9_]+$/;

/** Logical name syntax of the contract: `[a-z0-9_]` segments joined by `@`. */
export function isLogicalName(name: string): boolean {
  return name.length > 0 && name.split('@').every((segment) => SEGMENT.test(segment));
}

/** `a@b@c` → `a/b/c.js`. */
export function modulePath(name: string): string {
  return `${name.split('@').join('/')}.js`;
}

export type Resolution = { ok: true; name: string } | { ok: false; message: string };

/**
 * Resolves `spec` required from the module `from`. Never throws: a refusal comes back as
 * `{ok: false, message}` whose message names the spec and the requiring module.
 */
export function resolveSpecifier(from: string, spec: string, exists: (name: string) => boolean): Resolution {
  const refuse = (why: string): Resolution => ({
    ok: false,
    message: `cannot require '${spec}' from module '${from}': ${why}`,
  });
  if (!spec.startsWith('./') && !spec.startsWith('../')) {
    return refuse('only relative paths to sibling modules of the same package version can be required');
  }
  const relative = spec.endsWith('.js') ? spec.slice(0, -3) : spec;
  const segments = from.split('@').slice(0, -1);
  const parts = relative.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '.' && i === 0) continue;
    if (part === '..') {
      if (segments.length === 0) return refuse('the path leaves the package');
      segments.pop();
      continue;
    }
    if (!SEGMENT.test(part)) return refuse(`'${part}' is not a module path segment ([a-z0-9_]+)`);
    segments.push(part);
  }
  if (segments.length === 0) return refuse('the path names no module');
  const name = segments.join('@');
  if (!exists(name)) return refuse(`no module '${name}' in this package version`);
  return { ok: true, name };
}
