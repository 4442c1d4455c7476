// Startup: the catalog is rebuilt from package rows and route pointers alone — no archive is
// unzipped and no run replayed. A corrupt row is skipped loudly and never stops the others;
// a route to a version that is not loaded is kept aside as lost (starts refused, naming it).
import type { Ramp, VersionEntry } from '../catalog/catalog.js';
import { workflowSpec } from '../package/manifest.js';
import type { Manifest } from '../package/types.js';
import { K } from '../store/keys.js';
import { printableKey, type Store } from '../store/store.js';

/** The persisted metadata row of a loaded version (`pkg/<type>/<version>`). */
export interface PackageRow {
  workflow_type: string;
  version: string;
  manifest: Manifest;
  manifest_digest: string;
  deployed_entry_module: string;
  entry_function: string;
  loaded_at: string;
  module_names: string[];
  archive_bytes: number;
}

export function rowOf(entry: VersionEntry): PackageRow {
  return {
    workflow_type: entry.workflowType,
    version: entry.version,
    manifest: entry.manifest,
    manifest_digest: entry.manifestDigest,
    deployed_entry_module: entry.deployedEntryModule,
    entry_function: entry.entryFunction,
    loaded_at: entry.loadedAt,
    module_names: [...entry.moduleNames],
    archive_bytes: entry.archiveBytes,
  };
}

const HASH = /^[0-9a-f]{64}$/;

/** Checks a row's shape; returns the reason it is unusable, or undefined. */
export function rowProblem(key: string, row: PackageRow): string | undefined {
  if (typeof row !== 'object' || row === null) return 'not an object';
  const [, type, version] = key.split('\x00');
  if (row.workflow_type !== type || row.version !== version) return 'its key and content disagree';
  if (!HASH.test(row.version)) return 'version is not a content hash';
  if (typeof row.manifest !== 'object' || row.manifest === null || row.manifest.version !== row.version) return 'manifest missing or for another version';
  if (typeof row.entry_function !== 'string' || typeof row.deployed_entry_module !== 'string') return 'entry missing';
  if (typeof row.loaded_at !== 'string' || Number.isNaN(Date.parse(row.loaded_at))) return 'loaded_at missing';
  if (!Array.isArray(row.module_names)) return 'module list missing';
  // Every row's type must be one its package's manifest exports (its own or an additional one).
  try {
    if (workflowSpec(row.manifest, row.workflow_type) === undefined) return 'its manifest does not export its workflow type';
  } catch {
    return 'its manifest lists malformed additional workflows';
  }
  return undefined;
}

export async function restoreCatalog(
  store: Store,
  warn: (message: string) => void,
): Promise<{ entries: VersionEntry[]; routes: Map<string, string>; ramps: Map<string, Ramp>; lost: Map<string, string> }> {
  const entries: VersionEntry[] = [];
  const loaded = new Set<string>();
  const rows = store.scanJSON<PackageRow>(K.packageMetaRange(), (k, error) =>
    warn(`skipping package ${printableKey(k)}: ${error.message}; the rest of the state directory is unaffected`),
  );
  for await (const [k, row] of rows) {
    const problem = rowProblem(k, row);
    if (problem) {
      warn(`skipping corrupt package row ${printableKey(k)}: ${problem}; the rest of the state directory is unaffected`);
      continue;
    }
    entries.push({
      workflowType: row.workflow_type,
      version: row.version,
      manifest: row.manifest,
      manifestDigest: row.manifest_digest,
      deployedEntryModule: row.deployed_entry_module,
      entryFunction: row.entry_function,
      loadedAt: row.loaded_at,
      moduleNames: row.module_names,
      archiveBytes: row.archive_bytes,
    });
    loaded.add(`${row.workflow_type}\x00${row.version}`);
  }
  const routes = new Map<string, string>();
  const lost = new Map<string, string>();
  for (const [type, version] of await store.routes()) {
    if (!loaded.has(`${type}\x00${version}`)) {
      // Kept as a lost route (see WorkflowCatalog): starts are refused naming it, never rerouted.
      warn(`the route of '${type}' points at version ${version.slice(0, 12)}, which is not loaded: starts of '${type}' are refused until it is (see aion doctor)`);
      lost.set(type, version);
      continue;
    }
    routes.set(type, version);
  }
  const ramps = new Map<string, Ramp>();
  for (const [type, ramp] of await store.ramps((k) => warn(`ignoring corrupt ramp ${printableKey(k)}; starts of its type go to the routed version`))) {
    const ok = typeof ramp === 'object' && ramp !== null && typeof ramp.version === 'string' && typeof ramp.percent === 'number' && ramp.percent > 0 && ramp.percent < 100;
    if (!ok || !loaded.has(`${type}\x00${ramp.version}`) || !routes.has(type) || routes.get(type) === ramp.version) {
      warn(`ignoring the ramp of '${type}': it is malformed or names a version that is not loaded or is routed; starts of '${type}' go to the routed version`);
      continue;
    }
    ramps.set(type, { version: ramp.version, percent: ramp.percent });
  }
  return { entries, routes, ramps, lost };
}
