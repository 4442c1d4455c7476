// Fake terminal streams for in-process CLI runs and ink views: a writable that records what is
// written and says it is a terminal (or not), and a keyboard stdin that ink can put in raw mode.
import { PassThrough, Writable } from 'node:stream';
import { runCli } from '../../src/cli/program.js';
import type { Streams } from '../../src/cli/output.js';

export class FakeStream extends Writable {
  chunks: string[] = [];
  isTTY: boolean;
  columns: number;
  rows: number;

  constructor(options: { tty: boolean; columns?: number; rows?: number }) {
    super({ decodeStrings: false });
    this.isTTY = options.tty;
    this.columns = options.columns ?? 120;
    this.rows = options.rows ?? 40;
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(typeof chunk === 'string' ? chunk : String(chunk));
    callback();
  }

  get text(): string {
    return this.chunks.join('');
  }
}

/** A stdin that looks like a terminal keyboard; `press('q')` types a key. */
export class FakeKeyboard extends PassThrough {
  isTTY = true;
  rawMode = false;
  setRawMode(on: boolean): this {
    this.rawMode = on;
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  press(key: string): void {
    this.write(key);
  }
}

export interface Terminal extends Streams {
  stdout: FakeStream;
  stderr: FakeStream;
  stdin: FakeKeyboard;
}

export function terminal(tty = true): Terminal {
  return { stdout: new FakeStream({ tty }), stderr: new FakeStream({ tty }), stdin: new FakeKeyboard() };
}

/**
 * Runs the CLI in this process on fake streams, with colour allowed (NO_COLOR and FORCE_COLOR
 * cleared for the run).
 */
export async function run(argv: string[], tty = true): Promise<{ code: number; stdout: string; stderr: string; streams: Terminal }> {
  const streams = terminal(tty);
  const saved = { NO_COLOR: process.env.NO_COLOR, FORCE_COLOR: process.env.FORCE_COLOR };
  delete process.env.NO_COLOR;
  delete process.env.FORCE_COLOR;
  try {
    const code = await runCli(argv, streams);
    return { code, stdout: streams.stdout.text, stderr: streams.stderr.text, streams };
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  }
}

export const ESC = '\x1b[';

/** Removes ANSI escape sequences (colour, cursor) for assertions on the visible text. */
export function plain(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '');
}

export async function waitFor(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
