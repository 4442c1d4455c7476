// The one interface commands talk to. Today it is the engine embedded in this process; a
// running `aion serve` will answer the same methods over its control socket.
import path from 'node:path';
import type { Engine, DeployOptions } from '../engine/engine.js';
import type { RunFilter } from '../engine/runs.js';
import type {
  DeployRecord,
  LoadOutcome,
  RouteOutcome,
  RunDetail,
  RunSummary,
  SignalOutcome,
  StartOutcome,
  UnloadOutcome,
  VersionInfo,
} from '../engine/types.js';
import type { HolderInfo } from '../store/holder.js';

export interface Client {
  load(archivePath: string, options?: DeployOptions): Promise<LoadOutcome>;
  route(workflowType: string, version: string, options?: DeployOptions): Promise<RouteOutcome>;
  versions(workflowType?: string): Promise<VersionInfo[]>;
  unload(workflowType: string, version: string, options?: DeployOptions): Promise<UnloadOutcome>;
  history(workflowType?: string): Promise<DeployRecord[]>;
  start(workflowType: string, input: unknown, options?: { workflowId?: string }): Promise<StartOutcome>;
  signal(workflowId: string, name: string, input: unknown): Promise<SignalOutcome>;
  terminate(workflowId: string, reason: string): Promise<SignalOutcome>;
  runs(filter?: RunFilter): Promise<RunSummary[]>;
  show(workflowId: string): Promise<RunDetail>;
  close(): Promise<void>;
}

export interface ClientOptions {
  stateDir: string;
  lockTimeoutMs: number;
  /** The command writes: create the state directory if it does not exist. */
  write: boolean;
  /** Describes this process to other waiters (e.g. `aion load hello.aion`). */
  command: string;
  onWait?: (holder: HolderInfo | undefined) => void;
  onWarning?: (message: string) => void;
}

export class EmbeddedClient implements Client {
  constructor(readonly engine: Engine) {}

  load(archivePath: string, options?: DeployOptions) {
    return this.engine.loadPackage({ path: path.resolve(archivePath) }, options);
  }
  route(workflowType: string, version: string, options?: DeployOptions) {
    return this.engine.routeWorkflowVersion(workflowType, version, options);
  }
  versions(workflowType?: string) {
    return this.engine.listWorkflowVersions(workflowType);
  }
  unload(workflowType: string, version: string, options?: DeployOptions) {
    return this.engine.unloadWorkflowVersion(workflowType, version, options);
  }
  history(workflowType?: string) {
    return this.engine.deployHistory(workflowType);
  }
  start(workflowType: string, input: unknown, options?: { workflowId?: string }) {
    return this.engine.runs.start(workflowType, input, options);
  }
  signal(workflowId: string, name: string, input: unknown) {
    return this.engine.runs.signal(workflowId, name, input);
  }
  terminate(workflowId: string, reason: string) {
    return this.engine.runs.terminate(workflowId, reason);
  }
  runs(filter?: RunFilter) {
    return this.engine.runs.list(filter);
  }
  show(workflowId: string) {
    return this.engine.runs.show(workflowId);
  }
  close() {
    return this.engine.close();
  }
}

/** Opens the client for a state directory (waiting for its lock as the options say). */
export async function openClient(options: ClientOptions): Promise<Client> {
  const { Engine } = await import('../engine/engine.js');
  const engine = await Engine.open({
    stateDir: options.stateDir,
    create: options.write,
    lockTimeoutMs: options.lockTimeoutMs,
    command: options.command,
    onWait: options.onWait,
    onWarning: options.onWarning,
  });
  return new EmbeddedClient(engine);
}
