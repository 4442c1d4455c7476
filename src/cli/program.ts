// Builds the commander program: global options, the commands, and usage-error handling.
// Only the command being run is imported (all of them for help and unknown commands), and
// chalk only when a terminal may show colour: both are paid by every command's start-up.
import { Command, CommanderError, Option } from 'commander';
import { AionError } from '../errors.js';
import { Output, preloadColour, type Streams } from './output.js';
import { COMMANDS, commandIndex, commandOf } from './commands/index.js';

export const VERSION = '0.1.0';

/** Help is wrapped to the terminal, and never wider than 80 columns. */
export function helpWidth(streams: Streams): number {
  const columns = streams.stdout.columns;
  return Math.max(40, Math.min(80, typeof columns === 'number' && columns > 0 ? columns : 80));
}

/** The program with the commands `argv` needs (every command when argv is omitted). */
export async function buildProgram(streams: Streams = process, argv?: readonly string[], writeHelp: (s: string) => void = (s) => streams.stdout.write(s)): Promise<Command> {
  const program = new Command('aion');
  const only = argv === undefined ? undefined : commandOf(argv);
  program
    .description('Deploy versioned durable-workflow packages into an embedded engine.')
    // Short command terms keep the descriptions wide enough to wrap within 80 columns; every
    // command's help lists the global options too.
    .configureHelp({ helpWidth: helpWidth(streams), subcommandTerm: (cmd) => cmd.name(), showGlobalOptions: true, sortSubcommands: false })
    .helpOption('-h, --help', 'show help, with examples');
  // -V/--version is global only before the command name (runCli handles it); after it, a
  // command's own --version option (runs --version <v>) takes its value. So the option is
  // declared only where it cannot shadow one: for the top-level help.
  if (!only) program.option('-V, --version', 'print the aion version (before the command name)');
  program
    .addOption(new Option('--state-dir <dir>', 'state directory (default: $AION_STATE_DIR, else ./.aion-state)'))
    .option('--json', 'exactly one JSON document on stdout, for success and failure')
    .option('--no-color', 'no ANSI colour (also with NO_COLOR, or when not a terminal)')
    .addOption(new Option('--store <url>', 'postgres://… store shared by a fleet, instead of the state directory (default: $AION_STORE)'))
    .addOption(new Option('--lock-timeout <seconds>', 'wait this long for a state directory another aion holds (default: 30)'))
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: writeHelp,
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
  $ aion load hello-v2.aion --no-route && aion ramp hello 3f2a9c 10
  $ aion status hello
  $ aion route hello 3f2a9c
  $ aion wait hello 1b2c3d --drained --timeout 10m && aion prune hello
  $ aion rollback hello -m "v2 times out"
  $ aion history hello --limit 10
  $ aion top

Exit codes: 0 ok, 1 internal, 2 usage, 3 not_found, 4 version_pinned,
5 route_active, 6 invalid_package, 7 manifest_mismatch, 8 state_busy,
9 shutting_down, 10 store, 11 conflict, 12 timeout, 13 unavailable.
Shell completion: aion completion bash|zsh|fish (see aion completion --help).`,
    );
  const registers = await Promise.all((only ? [only] : COMMANDS).map((entry) => entry.load()));
  for (const register of registers) register(program, streams);
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({
      writeOut: writeHelp,
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
  const at = commandIndex(argv);
  const globalArgs = at === -1 ? argv : argv.slice(0, at);
  if (globalArgs.includes('-V') || globalArgs.includes('--version')) {
    streams.stdout.write(json ? JSON.stringify({ version: VERSION }, null, 2) + '\n' : VERSION + '\n');
    return 0;
  }
  const wantsHelp = globalArgs.includes('-h') || globalArgs.includes('--help');
  if (at === -1 && !wantsHelp) {
    // No command at all: a usage error (one JSON document with --json), help on stderr.
    const out = new Output(streams, { json, color: false });
    if (!json) streams.stderr.write((await buildProgram(streams)).helpInformation() + '\n');
    return out.error(new AionError('usage', 'no command given', { hint: "see 'aion --help' for the commands and global options" }));
  }
  if (!json && !colourOff && (streams.stdout.isTTY || streams.stderr.isTTY)) await preloadColour();
  // With --json, help is one JSON document too: {"help": "<the text>"}.
  let helpText = '';
  const program = await buildProgram(streams, argv, json ? (s) => void (helpText += s) : undefined);
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        if (json) streams.stdout.write(JSON.stringify({ help: helpText }, null, 2) + '\n');
        return 0;
      }
      const { message, suggestions } = splitSuggestions(error.message.replace(/^error:\s*/, ''));
      const out = new Output(streams, { json, color: !argv.includes('--no-color') && !process.env.NO_COLOR });
      const command = argv.find((a) => program.commands.some((c) => c.name() === a));
      const help = command ? `see 'aion ${command} --help'` : "see 'aion --help' for the commands and global options";
      const hint = suggestions.length > 0 ? `did you mean ${suggestions.join(' or ')}? ${help}` : help;
      return out.error(new AionError('usage', message, { hint, details: suggestions.length > 0 ? { suggestions } : {} }));
    }
    throw error;
  } finally {
    process.exitCode = saved;
  }
}

/**
 * Commander appends `\n(Did you mean load?)` (or `one of a, b`) to typo errors: the message
 * keeps only the error, the candidates become `error.suggestions` (and the hint).
 */
export function splitSuggestions(raw: string): { message: string; suggestions: string[] } {
  const m = /\s*\(Did you mean (?:one of )?(.+?)\?\)\s*$/s.exec(raw);
  if (!m) return { message: raw.trim(), suggestions: [] };
  return { message: raw.slice(0, m.index).trim(), suggestions: m[1]!.split(/,\s*/).map((x) => x.trim()).filter(Boolean) };
}
