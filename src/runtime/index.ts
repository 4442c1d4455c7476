// The workflow module runtime: registry, sandbox, replay and activity execution.
export * from './history.js';
export { ModuleRegistry, HOST_MODULES, checkModule, deployedName, type CompiledModule, type ModuleTexts } from './registry.js';
export { resolveSpecifier, isLogicalName, modulePath, type Resolution } from './resolve.js';
export { verifyEntry, versionSources, versionTexts, isSandboxPromise, DEFAULT_ACTIVATION_TIMEOUT_MS, DEFAULT_VERIFY_TIMEOUT_MS } from './sandbox.js';
export { CodeHost, WORKFLOW_ID_PATTERN, type RunInit } from './host.js';
export { CodePool, type PoolLimits, type VersionTexts, defaultLimits } from './pool.js';
export { checkPackageCode, verifyVersion, type CheckedManifest } from './check.js';
export { collectGarbage, heapMark } from './heap.js';
export {
  replay,
  runActivity,
  seedOf,
  NonDeterminismError,
  ActivityError,
  DEFAULT_ACTIVITY_TIMEOUT_MS,
  type RunInfo,
  type ReplayOptions,
  type ActivityOptions,
} from './executor.js';
