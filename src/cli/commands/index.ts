// The command table. Each command lives in its own module and registers itself on the program.
// Command modules import only commander types and light helpers at the top level; engine,
// package and view code is imported inside their actions.
import type { Command } from 'commander';
import type { Streams } from '../output.js';
import { registerInspect } from './inspect.js';
import { registerPack } from './pack.js';

export type Register = (program: Command, streams: Streams) => void;

export const COMMANDS: Register[] = [registerPack, registerInspect];
