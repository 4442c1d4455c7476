// The engine's view of the module runtime, imported lazily: node:vm and the sandbox are only
// paid for by commands that load packages or drive runs (type imports cost nothing at run time).
import type * as Runtime from '../runtime/index.js';

export type RuntimeApi = typeof Runtime;
export type ModuleRegistryLike = InstanceType<RuntimeApi['ModuleRegistry']>;

export function loadRuntime(): Promise<RuntimeApi> {
  return import('../runtime/index.js');
}
