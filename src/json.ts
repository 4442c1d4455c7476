// JSON values the engine accepts from outside (run and signal input): at most MAX_JSON_DEPTH
// levels of arrays and objects. Deeper values cannot be copied, stored or handed to workflow
// code without exhausting the stack (JSON.stringify, structured clone and the sandbox copy are
// all recursive; a depth of about 4,500 already overflows), so they are refused up front.
export const MAX_JSON_DEPTH = 1000;

/**
 * The nesting depth of a parsed JSON value (a scalar is 0, `[]` is 1), counted iteratively and
 * given up once it passes `limit`: returns `limit + 1` then, whatever the real depth.
 */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const here = depth + 1;
    if (here > limit) return limit + 1;
    if (here > deepest) deepest = here;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const child of children) if (child !== null && typeof child === 'object') stack.push([child, here]);
  }
  return deepest;
}
