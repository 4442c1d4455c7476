// Fake terminal streams for in-process CLI runs and ink views: a writable that records what is
// written and says it is a terminal (or not), and a keyboard stdin that ink can put in raw mode.
import { runCli } from '../../src/cli/program.js';
import type { Streams } from '../../src/cli/output.js';
import { FakeKeyboard, FakeStream } from '../helpers/inprocess.js';

export { FakeKeyboard, FakeStream };

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
