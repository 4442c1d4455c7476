// aion __complete -- <words…> (hidden): the candidates for the last word of a partial command
// line, one per line, for the scripts `aion completion` prints. Commands and options come
// from the commander definitions; workflow types, version prefixes and workflow ids from the
// state directory, read at completion time. It never fails loudly: any problem (no state
// directory, a busy one, a bug) means no candidates, and the shell falls back to file names.
import path from 'node:path';
import type { Command } from 'commander';
import type { Streams } from '../output.js';
import type { Register } from './index.js';

/** What a candidate list may need from the state directory. */
export interface CompletionData {
  types(): Promise<string[]>;
  /** 12-character prefixes of the type's loaded versions. */
  versions(workflowType: string): Promise<string[]>;
  workflowIds(running: boolean): Promise<string[]>;
}

const GLOBAL_VALUE_OPTIONS = new Set(['--state-dir', '--lock-timeout']);
const STATUSES = ['running', 'completed', 'failed', 'terminated', 'continued_as_new'];

function takesValue(cmd: Command, flag: string): boolean {
  const o = cmd.options.find((x) => x.long === flag || x.short === flag);
  return Boolean(o && (o.required || o.optional));
}

function optionFlags(cmd: Command): string[] {
  return cmd.options.filter((o) => !o.hidden).flatMap((o) => (o.long ? [o.long] : o.short ? [o.short] : []));
}

/**
 * The candidates for `words` (everything after `aion`; the last one is the word being
 * completed, possibly empty), filtered by its prefix. Empty: let the shell complete files.
 */
export async function candidates(program: Command, words: string[], data: CompletionData): Promise<string[]> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let cmd: Command | undefined;
  const operands: string[] = [];
  let valueOf: string | undefined;
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    const owner = cmd ?? program;
    if (w.startsWith('-')) {
      const takes = GLOBAL_VALUE_OPTIONS.has(w) || takesValue(owner, w) || (cmd !== undefined && takesValue(program, w));
      if (takes) {
        if (i === before.length - 1) valueOf = w;
        i++;
      }
      continue;
    }
    if (!cmd) {
      cmd = program.commands.find((c) => c.name() === w);
      if (!cmd) return [];
    } else operands.push(w);
  }
  const match = (list: string[]) => [...new Set(list)].filter((x) => x.startsWith(current)).sort();
  if (valueOf) {
    if (valueOf === '--type') return match(await data.types());
    if (valueOf === '--status') return match(STATUSES);
    if (valueOf === '--version' && cmd?.name() === 'runs') {
      const type = before[before.indexOf('--type') + 1];
      const types = before.includes('--type') && type ? [type] : await data.types();
      return match((await Promise.all(types.map((t) => data.versions(t)))).flat());
    }
    return [];
  }
  if (current.startsWith('-')) {
    return match([...(cmd ? optionFlags(cmd) : []), ...optionFlags(program), '--help']);
  }
  if (!cmd) return match(program.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden && c.name() !== 'help').map((c) => c.name()));
  const arg = cmd.registeredArguments[operands.length];
  if (!arg) return [];
  switch (arg.name()) {
    case 'workflow_type':
      return match(await data.types());
    case 'version':
      return operands[0] ? match(await data.versions(operands[0])) : [];
    case 'workflow_id':
      return match(await data.workflowIds(cmd.name() === 'signal' || cmd.name() === 'terminate'));
    case 'shell':
      return match(['bash', 'zsh', 'fish']);
    default:
      return [];
  }
}

/** Reads the state directory named in `words` (else $AION_STATE_DIR, else ./.aion-state). */
function stateData(words: string[]): CompletionData {
  const i = words.indexOf('--state-dir');
  const stateDir = path.resolve(i >= 0 && words[i + 1] ? words[i + 1]! : process.env.AION_STATE_DIR || '.aion-state');
  let versions: Promise<{ workflow_type: string; version: string; internal?: boolean }[]> | undefined;
  let runs: Promise<{ workflow_id: string; status: string }[]> | undefined;
  const open = async <T>(fn: (client: import('../../client/client.js').Client) => Promise<T>, fallback: T): Promise<T> => {
    try {
      const { openClient } = await import('../../client/client.js');
      const client = await openClient({ stateDir, lockTimeoutMs: 300, write: false, command: 'aion __complete' });
      try {
        return await fn(client);
      } finally {
        await client.close();
      }
    } catch {
      return fallback;
    }
  };
  const allVersions = () => (versions ??= open((c) => c.versions(), []));
  return {
    // An internal type is started only by its package's own workflows: nothing to offer.
    types: async () => (await allVersions()).filter((v) => !v.internal).map((v) => v.workflow_type),
    versions: async (type) => (await allVersions()).filter((v) => v.workflow_type === type).map((v) => v.version.slice(0, 12)),
    workflowIds: async (running) => (await (runs ??= open((c) => c.runs(), []))).filter((r) => !running || r.status === 'running').map((r) => r.workflow_id),
  };
}

export interface CompleteOptions {
  /** The command line after `aion`; the last word is the one being completed. */
  words: string[];
  /** Where types, versions and ids come from (default: the state directory `words` names). */
  data?: CompletionData;
}

/**
 * Writes the candidates, one per line. Takes streams rather than a CommandContext: it has no
 * global options to resolve and never reports an error (no candidates instead).
 */
export async function runComplete(streams: Streams, opts: CompleteOptions): Promise<void> {
  try {
    const { buildProgram } = await import('../program.js');
    const full = await buildProgram(streams);
    const words = opts.words.length === 0 ? [''] : opts.words;
    const list = await candidates(full, words, opts.data ?? stateData(words));
    if (list.length > 0) streams.stdout.write(list.join('\n') + '\n');
  } catch {
    // No candidates: the shell completes file names instead.
  }
}

export const registerComplete: Register = (program: Command, streams: Streams) => {
  program
    .command('__complete', { hidden: true })
    .description('print completion candidates (used by the scripts of aion completion)')
    .argument('[words...]', 'the command line after aion; the last word is being completed')
    .allowUnknownOption(true)
    .helpOption(false)
    .action(async (words: string[] = []) => runComplete(streams, { words }));
};
