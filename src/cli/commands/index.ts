// The command table. Each command lives in its own module and registers itself on the program.
// Start-up is a hot path: a run of one command imports only that command's module (help and
// unknown commands import them all). Command modules import only commander types and light
// helpers at the top level; engine, package and view code is imported inside their actions.
import type { Command } from 'commander';
import type { Streams } from '../output.js';

export type Register = (program: Command, streams: Streams) => void;

export interface CommandEntry {
  name: string;
  load: () => Promise<Register>;
}

/** In the order `aion --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'pack', load: async () => (await import('./pack.js')).registerPack },
  { name: 'inspect', load: async () => (await import('./inspect.js')).registerInspect },
  { name: 'load', load: async () => (await import('./load.js')).registerLoad },
  { name: 'versions', load: async () => (await import('./versions.js')).registerVersions },
  { name: 'route', load: async () => (await import('./route.js')).registerRoute },
  { name: 'ramp', load: async () => (await import('./ramp.js')).registerRamp },
  { name: 'rollback', load: async () => (await import('./rollback.js')).registerRollback },
  { name: 'unload', load: async () => (await import('./unload.js')).registerUnload },
  { name: 'prune', load: async () => (await import('./prune.js')).registerPrune },
  { name: 'status', load: async () => (await import('./status.js')).registerStatus },
  { name: 'wait', load: async () => (await import('./wait.js')).registerWait },
  { name: 'history', load: async () => (await import('./history.js')).registerHistory },
  { name: 'start', load: async () => (await import('./start.js')).registerStart },
  { name: 'signal', load: async () => (await import('./signal.js')).registerSignal },
  { name: 'terminate', load: async () => (await import('./terminate.js')).registerTerminate },
  { name: 'runs', load: async () => (await import('./runs.js')).registerRuns },
  { name: 'show', load: async () => (await import('./show.js')).registerShow },
  { name: 'top', load: async () => (await import('./top.js')).registerTop },
  { name: 'serve', load: async () => (await import('./serve.js')).registerServe },
  { name: 'workers', load: async () => (await import('./workers.js')).registerWorkers },
  { name: 'migrate', load: async () => (await import('./migrate.js')).registerMigrate },
  { name: 'doctor', load: async () => (await import('./doctor.js')).registerDoctor },
  { name: 'completion', load: async () => (await import('./completion.js')).registerCompletion },
  { name: '__complete', load: async () => (await import('./complete.js')).registerComplete },
];

/** Global options that take a value: their value is never the command name. */
const VALUE_OPTIONS = new Set(['--state-dir', '--lock-timeout', '--store']);

/** The index of the command name in argv (its first operand, skipping global options), or -1. */
export function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return -1;
    if (arg.startsWith('-')) {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** The command an argv names, if it names a known one. */
export function commandOf(argv: readonly string[]): CommandEntry | undefined {
  const i = commandIndex(argv);
  return i === -1 ? undefined : COMMANDS.find((c) => c.name === argv[i]);
}
