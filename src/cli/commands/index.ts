// The command table. Each command lives in its own module and registers itself on the program.
import type { Command } from 'commander';
import type { Streams } from '../output.js';

export type Register = (program: Command, streams: Streams) => void;

export const COMMANDS: Register[] = [];
