// The one definition of what text output never prints raw: C0 control characters (ESC, CR,
// LF, TAB, BEL, ...), DEL, C1 control characters (0x80–0x9f, e.g. the 8-bit CSI) and the
// Unicode characters that reorder or break lines on a terminal (bidi embeddings, overrides
// and isolates, U+2028/U+2029). They are shown as JavaScript-style escapes: `\n`, `\r`, `\t`,
// `\x1b`, `\x9b`, `\u202e`. A backslash is left as it is (readable paths and patterns): text
// output is for people; --json carries the exact string.

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_BUT_LF = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function shown(ch: string): string {
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return '\\t';
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every unsafe character escaped: safe to print as (part of) one line. */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, shown);
}

/** The same, keeping line feeds: for text whose line breaks are the renderer's own. */
export function escapeKeepingLines(text: string): string {
  return text.replace(UNSAFE_BUT_LF, shown);
}
