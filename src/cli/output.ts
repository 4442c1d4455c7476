// Where results, chatter and errors go. Results go to stdout (one JSON document with --json);
// progress, warnings and human-readable errors go to stderr. Colour only on a terminal,
// never with --no-color or NO_COLOR.
import type { ChalkInstance } from 'chalk';
import { AionError, toAionError } from '../errors.js';

type ChalkModule = typeof import('chalk');
let chalkModule: ChalkModule | undefined;

/**
 * Imports chalk (about 10 ms) for outputs that may be coloured. Called before a command runs
 * when a stream is a terminal; without it every Output is plain.
 */
export async function preloadColour(): Promise<void> {
  chalkModule ??= await import('chalk');
}

/** A chalk look-alike that colours nothing: `plain.red.bold('x') === 'x'`. */
const plain: ChalkInstance = new Proxy(function () {}, {
  get: (_target, prop) => (prop === 'level' ? 0 : plain),
  apply: (_target, _this, args: unknown[]) => args.join(' '),
}) as unknown as ChalkInstance;

function colours(level: 0 | 1): ChalkInstance {
  return level === 0 || !chalkModule ? plain : new chalkModule.Chalk({ level });
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
      const rendered = text();
      if (rendered.length > 0) this.streams.stdout.write(rendered.endsWith('\n') ? rendered : rendered + '\n');
    }
  }

  /** Success chatter: stderr, on a terminal only, never with --json. */
  info(message: string): void {
    if (!this.json && this.streams.stderr.isTTY) this.streams.stderr.write(message + '\n');
  }

  /** Warnings always reach stderr (scripts should see them in logs), even with --json. */
  warn(message: string): void {
    this.streams.stderr.write(this.ce.yellow('warning: ') + message + '\n');
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
      this.streams.stderr.write(`${this.ce.red('error:')} ${oneLine(error.message)}\n`);
      const hint = error.hint ?? fallbackHint(error, command);
      if (hint) this.streams.stderr.write(`${this.ce.dim('hint:')} ${hint}\n`);
      if (error.code === 'internal' && raw instanceof Error && raw.stack && process.env.AION_DEBUG) {
        this.streams.stderr.write(raw.stack + '\n');
      }
    }
    return error.exitCode;
  }
}

/** Keeps an error to one line: a multi-line message (from a library) is joined. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
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
