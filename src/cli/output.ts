// Where results, chatter and errors go. Results go to stdout (one JSON document with --json);
// progress, warnings and human-readable errors go to stderr. Colour only on a terminal,
// never with --no-color or NO_COLOR.
//
// Text output never carries a control character it did not mean to (src/escape.ts says
// which): every string Output writes passes through `finishText`, the one boundary, which
// escapes them all except the renderer's own line feeds; strings given to the colour
// functions (`out.c.red(message)`) and table cells are escaped whole, line feeds included;
// error, hint, warning and notice lines are escaped whole. The only escape sequences that
// reach a terminal are aion's own colours: the colour functions write them with MARK in place
// of ESC, and `finishText` turns MARK back into ESC after escaping everything else. MARK is
// random per process, so no string from outside can forge a colour code. --json output is
// left alone (JSON escapes control characters itself).
import type { ChalkInstance } from 'chalk';
import { AionError, toAionError } from '../errors.js';
import { escapeKeepingLines, escapeText } from '../escape.js';

/**
 * Stands for ESC in the colour codes our chalk writes (private-use characters, random). One per
 * process, kept on globalThis: the bundled bin/aion and the ink views it imports from dist/src
 * hold two copies of this module, and a view's `finishText` must read the bundle's colours.
 */
const MARK_KEY = Symbol.for('aion.cli.colourMark');
const MARK: string = ((globalThis as Record<symbol, unknown>)[MARK_KEY] ??= Array.from({ length: 6 }, () =>
  String.fromCharCode(0xe000 + Math.floor(Math.random() * 0x1000)),
).join('')) as string;
const MARKS = new RegExp(MARK, 'g');
/** A colour code as written by our colour functions (before `finishText`) or after it. */
export const COLOUR_CODE = new RegExp(`(?:${MARK}|\x1b)\[[0-9;]*m`, 'g');

/** The text boundary: unsafe characters escaped (line feeds kept), then our colour codes made real. */
export function finishText(text: string): string {
  return escapeKeepingLines(text).replace(MARKS, '\x1b');
}

const escapeArgs = (args: unknown[]) => args.map((a) => (typeof a === 'string' ? escapeText(a) : a));

type ChalkModule = typeof import('chalk');
let chalkModule: ChalkModule | undefined;

/**
 * Imports chalk (about 10 ms) for outputs that may be coloured. Called before a command runs
 * when a stream is a terminal; without it every Output is plain.
 */
export async function preloadColour(): Promise<void> {
  chalkModule ??= await import('chalk');
}

/** A chalk look-alike that colours nothing: `plain.red.bold('x') === 'x'` (escaped, as all colour arguments are). */
const plain: ChalkInstance = new Proxy(function () {}, {
  get: (_target, prop) => (prop === 'level' ? 0 : plain),
  apply: (_target, _this, args: unknown[]) => escapeArgs(args).join(' '),
}) as unknown as ChalkInstance;

/**
 * Chalk whose string arguments are escaped and whose codes are written with MARK for ESC. The
 * proxy's target is a stand-in (chalk caches its styles as read-only properties, which a proxy
 * of chalk itself would have to return unchanged).
 */
function marked(real: unknown): ChalkInstance {
  const fn = real as ((...args: unknown[]) => unknown) & Record<PropertyKey, unknown>;
  return new Proxy(() => {}, {
    get: (_t, prop) => {
      const value = fn[prop];
      return typeof value === 'function' ? marked(value) : value;
    },
    apply: (_t, _this, args: unknown[]) => {
      const value = fn(...escapeArgs(args));
      return typeof value === 'string' ? value.replaceAll('\x1b', MARK) : typeof value === 'function' ? marked(value) : value;
    },
  }) as unknown as ChalkInstance;
}

function colours(level: 0 | 1): ChalkInstance {
  return level === 0 || !chalkModule ? plain : marked(new chalkModule.Chalk({ level }));
}

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  /** Keyboard input of interactive views (`aion top`); process.stdin when absent. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface OutputOptions {
  json: boolean;
  color: boolean;
}

export class Output {
  readonly json: boolean;
  /** Colour for stdout text (results). */
  readonly c: ChalkInstance;
  /** Colour for stderr text (errors, warnings). */
  readonly ce: ChalkInstance;
  readonly isTTY: boolean;
  /** Colour wanted (no --no-color, no NO_COLOR); views use it, chalk instances already do. */
  readonly color: boolean;

  constructor(
    readonly streams: Streams,
    options: OutputOptions,
  ) {
    this.json = options.json;
    this.isTTY = Boolean(streams.stdout.isTTY);
    this.color = options.color;
    this.c = colours(options.color && this.isTTY ? 1 : 0);
    this.ce = colours(options.color && streams.stderr.isTTY ? 1 : 0);
  }

  /** Prints a command's result: `data` as JSON with --json, else the text rendering. */
  result(data: unknown, text: () => string): void {
    if (this.json) {
      this.streams.stdout.write(JSON.stringify(data, null, 2) + '\n');
    } else {
      const rendered = finishText(text());
      if (rendered.length > 0) this.streams.stdout.write(rendered.endsWith('\n') ? rendered : rendered + '\n');
    }
  }

  /** Success chatter: stderr, on a terminal only, never with --json. One line (escaped). */
  info(message: string): void {
    if (!this.json && this.streams.stderr.isTTY) this.streams.stderr.write(finishText(escapeText(message)) + '\n');
  }

  /** Warnings always reach stderr (scripts should see them in logs), even with --json. One line (escaped). */
  warn(message: string): void {
    this.streams.stderr.write(finishText(this.ce.yellow('warning: ') + escapeText(message)) + '\n');
  }

  /** A notice on stderr, always (waiting for the lock, the readiness line). One line (escaped). */
  notice(message: string): void {
    this.streams.stderr.write(finishText(escapeText(message)) + '\n');
  }

  /**
   * Interactive ink views (spinners, `aion top`): only for people at a terminal — both stdout
   * and stderr are terminals and no --json. Piped or redirected output never gets one.
   */
  get interactive(): boolean {
    // A terminal that reports no width (some pseudo-terminals) cannot lay out a view.
    return !this.json && this.isTTY && Boolean(this.streams.stderr.isTTY) && (this.streams.stderr.columns ?? 0) > 0;
  }

  /**
   * Renders a failure — one line, then a hint line naming the next step when there is one —
   * and returns the exit code it maps to. `command` (e.g. `load`) sharpens the fallback hints.
   */
  error(raw: unknown, command?: string): number {
    const error = toAionError(raw);
    if (this.json) {
      this.streams.stdout.write(JSON.stringify(error.toJSON(), null, 2) + '\n');
    } else {
      // Messages embed user strings (ids, archive paths, errors of workflow code): each line is
      // escaped whole, so a line feed in one shows as \n and the error stays one line.
      this.streams.stderr.write(finishText(`${this.ce.red('error:')} ${escapeText(error.message.trim())}`) + '\n');
      const hint = error.hint ?? fallbackHint(error, command);
      if (hint) this.streams.stderr.write(finishText(`${this.ce.dim('hint:')} ${escapeText(hint)}`) + '\n');
      if (error.code === 'internal' && raw instanceof Error && raw.stack && process.env.AION_DEBUG) {
        this.streams.stderr.write(finishText(raw.stack) + '\n');
      }
    }
    return error.exitCode;
  }
}

/** The next step for errors raised without a hint of their own. */
function fallbackHint(error: AionError, command?: string): string | undefined {
  const help = command ? `aion ${command} --help` : 'aion --help';
  switch (error.code) {
    case 'usage':
      return `see '${help}'`;
    case 'invalid_package':
      return command === 'pack'
        ? 'fix the project (workflow.json and modules/), then run aion pack again'
        : "check the archive with 'aion inspect <archive>'; rebuild it with 'aion pack <project_dir>'";
    case 'not_found':
      return "see what is loaded with 'aion versions' and what runs with 'aion runs'";
    case 'store':
      return 'check the state directory (--state-dir or $AION_STATE_DIR): permissions, free space, and that no other tool writes to it';
    case 'shutting_down':
      return 'aion serve is stopping; retry once it has stopped (the command then runs in-process)';
    case 'internal':
      return process.env.AION_DEBUG ? undefined : 'this is a bug in aion; rerun with AION_DEBUG=1 for a stack trace';
    default:
      return undefined;
  }
}

export function usageError(message: string, hint?: string): AionError {
  return new AionError('usage', message, { hint });
}
