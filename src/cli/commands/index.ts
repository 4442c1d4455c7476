// The command table. Each command lives in its own module and registers itself on the program.
// Command modules import only commander types and light helpers at the top level; engine,
// package and view code is imported inside their actions.
import type { Command } from 'commander';
import type { Streams } from '../output.js';
import { registerInspect } from './inspect.js';
import { registerLoad } from './load.js';
import { registerPack } from './pack.js';
import { registerRoute } from './route.js';
import { registerUnload } from './unload.js';
import { registerVersions } from './versions.js';
import { registerStart } from './start.js';
import { registerSignal } from './signal.js';
import { registerTerminate } from './terminate.js';
import { registerRuns } from './runs.js';
import { registerShow } from './show.js';
import { registerServe } from './serve.js';
import { registerHistory } from './history.js';
import { registerRollback } from './rollback.js';
import { registerTop } from './top.js';
import { registerDoctor } from './doctor.js';

export type Register = (program: Command, streams: Streams) => void;

export const COMMANDS: Register[] = [registerPack, registerInspect, registerLoad, registerVersions, registerRoute, registerRollback, registerUnload,
  registerHistory, registerStart, registerSignal, registerTerminate, registerRuns, registerShow, registerTop, registerServe, registerDoctor,
];
