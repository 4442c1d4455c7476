// Where results, chatter and errors go. Results go to stdout (one JSON document with --json);
// progress, warnings and human-readable errors go to stderr. Colour only on a terminal,
// never with --no-color or NO_COLOR.
import { Chalk, type ChalkInstance } from 'chalk';
import { AionError, toAionError } from '../errors.js';

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
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

  constructor(
    readonly streams: Streams,
    options: OutputOptions,
  ) {
    this.json = options.json;
    this.isTTY = Boolean(streams.stdout.isTTY);
    this.c = new Chalk({ level: options.color && this.isTTY ? 1 : 0 });
    this.ce = new Chalk({ level: options.color && streams.stderr.isTTY ? 1 : 0 });
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

  /** Renders a failure and returns the exit code it maps to. */
  error(raw: unknown): number {
    const error = toAionError(raw);
    if (this.json) {
      this.streams.stdout.write(JSON.stringify(error.toJSON(), null, 2) + '\n');
    } else {
      this.streams.stderr.write(`${this.ce.red('error:')} ${error.message}\n`);
      if (error.hint) this.streams.stderr.write(`${this.ce.dim('hint:')} ${error.hint}\n`);
      if (error.code === 'internal' && raw instanceof Error && raw.stack && process.env.AION_DEBUG) {
        this.streams.stderr.write(raw.stack + '\n');
      }
    }
    return error.exitCode;
  }
}

export function usageError(message: string, hint?: string): AionError {
  return new AionError('usage', message, { hint });
}
