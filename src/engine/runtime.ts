import type { Activation, WorkflowEvent } from '../runtime/history.js';


// The engine's view of the module runtime, imported lazily: node:vm and the sandbox are only
// paid for by commands that load packages or drive runs.

export interface ModuleRegistryLike {
  register(version: string, modules: Map<string, Uint8Array>): string[];
  has(version: string): boolean;
  deployedNames(version: string): string[];
  unregister(deployedName: string): void;
  hostModules(): string[];
}

export interface RuntimeApi {
  ModuleRegistry: new () => ModuleRegistryLike;
  verifyEntry(
    registry: ModuleRegistryLike,
    version: string,
    entryModule: string,
    entryFunction: string,
    activities: string[],
    options?: { timeoutMs?: number },
  ): void;
  replay(
    registry: ModuleRegistryLike,
    version: string,
    info: RunInfo,
    history: WorkflowEvent[],
    options?: { timeoutMs?: number },
  ): Activation;
  runActivity(
    registry: ModuleRegistryLike,
    version: string,
    entryModule: string,
    name: string,
    input: unknown,
    options?: { timeoutMs?: number },
  ): Promise<unknown>;
}

export interface RunInfo {
  workflowId: string;
  runId: string;
  workflowType: string;
  entryModule: string;
  entryFunction: string;
  activities: string[];
}

export async function loadRuntime(): Promise<RuntimeApi> {
  const specifier = '../runtime/index.js';
  return (await import(specifier)) as RuntimeApi;
}
