// Runs aion commands in this process, on fake streams: the argv, exit code, stdout and stderr
// bin/aion would give, without a process per command. For the logic of commands; what only a
// process shows (exit on a signal, two processes on one directory, the installed bin) stays
// with the spawning helpers of cli.ts.
import { PassThrough, Writable } from 'node:stream';
import path from 'node:path';
import { runCli } from '../../src/cli/program.js';
import { Output, type Streams } from '../../src/cli/output.js';
import type { CommandContext } from '../../src/cli/context.js';
import type { CliResult } from './cli.js';

/** A writable that records what is written, and says it is a terminal (or not). */
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

export interface InProcessOptions {
  /** Set for the command's duration (undefined removes a variable), then restored. */
  env?: NodeJS.ProcessEnv;
  /** Both streams are terminals (default: not, as when piped). */
  tty?: boolean;
}

function parsed(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    return undefined;
  }
}

/**
 * `aion ...args` in this process: the same result shape as cli.ts's `aion()`. FORCE_COLOR and
 * NO_COLOR are cleared for the run (as the spawning helper clears FORCE_COLOR), so text is
 * plain unless `tty` is set.
 */
export async function aionIn(args: string[], options: InProcessOptions = {}): Promise<CliResult> {
  const tty = options.tty ?? false;
  const streams: Streams = { stdout: new FakeStream({ tty }), stderr: new FakeStream({ tty }), stdin: new FakeKeyboard() };
  const env = { FORCE_COLOR: undefined, NO_COLOR: undefined, ...options.env };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = await runCli(args, streams);
    const stdout = (streams.stdout as FakeStream).text;
    return { code, stdout, stderr: (streams.stderr as FakeStream).text, json: parsed(stdout) };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * A CommandContext for calling a command's run function directly (`runRoute(ctx, {...})`),
 * with what it writes kept in `stdout` and `stderr`. A failure is thrown, not rendered.
 */
export function commandContext(options: { stateDir: string; json?: boolean; tty?: boolean; lockTimeoutMs?: number }): {
  ctx: CommandContext;
  stdout: FakeStream;
  stderr: FakeStream;
  json: () => any;
} {
  const tty = options.tty ?? false;
  const stdout = new FakeStream({ tty });
  const stderr = new FakeStream({ tty });
  const json = Boolean(options.json);
  const ctx: CommandContext = {
    globals: { stateDir: path.resolve(options.stateDir), json, color: false, lockTimeoutMs: options.lockTimeoutMs ?? 30_000 },
    out: new Output({ stdout, stderr }, { json, color: false }),
  };
  return { ctx, stdout, stderr, json: () => JSON.parse(stdout.text) };
}
