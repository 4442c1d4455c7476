// Global options, resolved once per command from commander's parsed values and the environment.
import path from 'node:path';
import type { Command } from 'commander';
import { Output, type Streams } from './output.js';
import { usageError } from './output.js';

export interface GlobalOptions {
  stateDir: string;
  json: boolean;
  color: boolean;
  lockTimeoutMs: number;
  /** A store URL (--store, else $AION_STORE): replaces the state directory when set. */
  store?: string;
}

export function resolveGlobals(command: Command, env: NodeJS.ProcessEnv = process.env): GlobalOptions {
  const opts = command.optsWithGlobals<{
    stateDir?: string;
    json?: boolean;
    color?: boolean;
    lockTimeout?: string;
    store?: string;
  }>();
  const store = opts.store ?? (env.AION_STORE || undefined);
  if (store !== undefined && !/^postgres(ql)?:\/\//i.test(store)) {
    throw usageError(`--store (or $AION_STORE) must be a postgres:// URL, got '${store.replace(/:[^@/:]*@/, ':***@')}'`);
  }
  const stateDir = path.resolve(opts.stateDir ?? (env.AION_STATE_DIR || '.aion-state'));
  const noColorEnv = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  let lockTimeoutMs = 30_000;
  if (opts.lockTimeout !== undefined) {
    const seconds = Number(opts.lockTimeout);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw usageError(`--lock-timeout must be a number of seconds ≥ 0, got '${opts.lockTimeout}'`);
    }
    lockTimeoutMs = Math.round(seconds * 1000);
  }
  return {
    stateDir,
    json: Boolean(opts.json),
    color: opts.color !== false && !noColorEnv,
    lockTimeoutMs,
    ...(store === undefined ? {} : { store }),
  };
}

export interface CommandContext {
  globals: GlobalOptions;
  out: Output;
}

export type CommandBody<A extends unknown[]> = (ctx: CommandContext, ...args: A) => Promise<void>;

/**
 * Wraps a command body into a commander action: resolves globals, runs the body, renders any
 * failure through Output and sets the exit code. Never throws.
 */
export function action<A extends unknown[]>(body: CommandBody<A>, streams: Streams = process) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const wantsJson = Boolean(command.optsWithGlobals<{ json?: boolean }>().json);
    let out = new Output(streams, { json: wantsJson, color: false });
    try {
      const globals = resolveGlobals(command);
      out = new Output(streams, { json: globals.json, color: globals.color });
      await body({ globals, out }, ...(args.slice(0, -1) as A));
    } catch (error) {
      process.exitCode = out.error(error, command.name());
    }
  };
}
