// Builds the commander program: global options, the commands, and usage-error handling.
// Only the command being run is imported (all of them for help and unknown commands), and
// chalk only when a terminal may show colour: both are paid by every command's start-up.
import { Command, CommanderError, Option } from 'commander';
import { AionError } from '../errors.js';
import { Output, preloadColour, type Streams } from './output.js';
import { COMMANDS, commandOf } from './commands/index.js';

export const VERSION = '0.1.0';

/** The program with the commands `argv` needs (every command when argv is omitted). */
export async function buildProgram(streams: Streams = process, argv?: readonly string[]): Promise<Command> {
  const program = new Command('aion');
  program
    .description('Deploy versioned durable-workflow packages into an embedded engine.')
    .version(VERSION, '-V, --version', 'print the aion version')
    .helpOption('-h, --help', 'show help')
    .addOption(new Option('--state-dir <dir>', 'state directory (default: $AION_STATE_DIR or ./.aion-state)'))
    .option('--json', 'print exactly one JSON document on stdout, for success and failure')
    .option('--no-color', 'no ANSI colour (also with NO_COLOR or when stdout is not a terminal)')
    .addOption(new Option('--lock-timeout <seconds>', 'how long to wait for a state directory held by another aion (default: 30)'))
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      // Usage errors are rendered by us (JSON-aware); commander only supplies the message.
      outputError: () => {},
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ aion pack fixtures/hello_v1 --out hello.aion
  $ aion load hello.aion
  $ aion versions
  $ aion route hello 3f2a9c
  $ aion rollback hello -m "v2 times out"
  $ aion history hello --limit 10
  $ aion unload hello 3f2a9c --json
  $ aion top

Exit codes: 0 ok, 1 internal, 2 usage, 3 not_found, 4 version_pinned, 5 route_active,
6 invalid_package, 7 manifest_mismatch, 8 state_busy, 9 shutting_down, 10 store, 11 conflict.`,
    );
  const only = argv === undefined ? undefined : commandOf(argv);
  const registers = await Promise.all((only ? [only] : COMMANDS).map((entry) => entry.load()));
  for (const register of registers) register(program, streams);
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      outputError: () => {},
    });
  }
  return program;
}

/**
 * Parses argv and runs the command; resolves to the process exit code. Commands report their
 * exit code through process.exitCode, which is restored afterwards (so several runs can share
 * one process, as the in-process tests do).
 */
export async function runCli(argv: string[], streams: Streams = process): Promise<number> {
  const json = argv.includes('--json');
  const colourOff = argv.includes('--no-color') || Boolean(process.env.NO_COLOR);
  if (!json && !colourOff && (streams.stdout.isTTY || streams.stderr.isTTY)) await preloadColour();
  const program = await buildProgram(streams, argv);
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return 0;
      }
      // commander puts suggestions on a line of their own: joined, as the error is one line.
      const message = error.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ');
      const out = new Output(streams, { json, color: !argv.includes('--no-color') && !process.env.NO_COLOR });
      const command = argv.find((a) => program.commands.some((c) => c.name() === a));
      const hint = command ? `see 'aion ${command} --help'` : "see 'aion --help' for the commands and global options";
      return out.error(new AionError('usage', message, { hint }));
    }
    throw error;
  } finally {
    process.exitCode = saved;
  }
}
