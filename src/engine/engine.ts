// The engine: the deploy seam (load / route / list / unload) over the catalog, the store and
// the module runtime. Every deploy operation is admitted by the shutdown gate, takes the
// deploy lock, then one exclusive store transaction (fleet-wide on PostgreSQL), then the
// catalog mutation lock (that order, everywhere), writes its change to the store in one
// synchronous batch, and only then swaps the catalog snapshot — so a failure at any step
// leaves both the state directory and the catalog exactly as before (on PostgreSQL a failed
// commit reloads the catalog from the database, store/postgres.ts).
import { readSync } from 'node:fs';
import { currentActor } from '../actor.js';
import { AionError } from '../errors.js';
import { Mutex } from '../concurrency.js';
import { faultPoint } from '../faults.js';
import { isInternal, notLoaded, WorkflowCatalog, type Ramp, type VersionEntry } from '../catalog/catalog.js';
import { hasSchemas, packageTypes, workflowSpecs } from '../package/manifest.js';
import { Store, putJSON, putBytes, del, appendAudit, type StoreOp } from '../store/store.js';
import { K } from '../store/keys.js';
import { readVersionPins } from '../store/pins.js';
import type { KV } from '../store/kv.js';
import type { PgKV } from '../store/postgres.js';
import type { Fleet } from './lease.js';
import type { HolderInfo } from '../store/holder.js';
import type { AionPackage, PackageLimits } from '../package/types.js';
import { SchemaCache } from '../package/schema.js';
import type { ScannedPackage } from '../package/read.js';
import type { ZipSource } from '../package/zip.js';
import type { ArchiveInput } from '../store/archives.js';
import { ShutdownGate, admitted } from './gate.js';
import { describeHolder, describeHolders, holdersHint } from './holders.js';
import { loadRuntime, type ModuleRegistryLike, type RuntimeApi } from './runtime.js';
import { restoreCatalog, rowOf, type PackageRow } from './restore.js';
import { RunManager } from './runs.js';
import { LiveRuns, DEFAULT_MAX_RESIDENT } from './live.js';
import type { CodePool, PoolLimits } from '../runtime/pool.js';
import type { DeployRecord, HoldersOutcome, LoadOutcome, PinHolder, PruneOutcome, RampOutcome, RolloutStatus, RouteOutcome, UnloadOutcome, VersionInfo } from './types.js';

export interface EngineOptions {
  stateDir: string;
  /** Create the state directory if missing (commands that write); else a missing one reads empty. */
  create: boolean;
  lockTimeoutMs: number;
  /** Describes this process in the holder file (e.g. `aion load x.aion`). */
  command?: string;
  onWait?: (holder: HolderInfo | undefined, position?: number) => void;
  /** Called while the directory is held by another process; may throw to stop waiting. */
  whileWaiting?: (holder: HolderInfo | undefined) => Promise<void>;
  /** Loud, non-fatal problems (a corrupt package row skipped at startup, …). */
  onWarning?: (message: string) => void;
  /** Replaces LevelDB (tests inject faults through it). */
  kv?: KV;
  /**
   * Let go of the state directory after this long without a transaction (while runs wait on
   * user code), taking it again for the next one: one-shot commands that drive runs use it so
   * other processes never wait behind an activity. Absent: held until close (`aion serve`).
   */
  releaseIdleMs?: number;
  /** Runs whose workflow code stays resident between activations, at most (default 5000). */
  maxResident?: number;
  /** Limits of user code (default: defaultLimits(), from the environment). */
  limits?: Partial<PoolLimits>;
  /** The wall clock of deploy records' `at` (tests skew it; default Date.now). Never orders anything. */
  now?: () => number;
  /** A store URL (`postgres://…`, from --store / $AION_STORE): replaces the state directory. */
  store?: string;
  /** On a shared store: this engine is an `aion serve` worker (claims runs nobody drives). */
  worker?: 'serve' | 'command';
}

export type LoadSource = { path: string } | { bytes: Uint8Array; name?: string };

export interface DeployOptions {
  dryRun?: boolean;
  /** Free text recorded in the deploy history. */
  message?: string;
  /** Recorded as the history's `user` (the caller's AION_ACTOR or OS user); default: this process's. */
  actor?: string;
  /** Load only: false registers and persists without touching the route (`load --no-route`). */
  route?: boolean;
  /** Load only: archive limits (`--max-archive-bytes` …); absent fields keep the defaults. */
  limits?: Partial<PackageLimits>;
  /** Load only: a `serve --package` archive, held in memory and routed while this process runs. */
  startup?: boolean;
  /**
   * Load only: called as each step begins (progress views). Never over the control socket.
   * A throwing callback is ignored; it cannot fail the load.
   */
  onProgress?: (step: LoadStep, detail?: LoadProgressDetail) => void;
}

/** The steps of a load, in order. `register` and `verify` are skipped for a loaded version. */
export const LOAD_STEPS = ['read', 'validate', 'hash', 'register', 'verify', 'persist', 'route'] as const;
export type LoadStep = (typeof LOAD_STEPS)[number];

export interface LoadProgressDetail {
  /** `read`: bytes read so far, of `total`. */
  bytes?: number;
  total?: number;
  /** Set once known (from `register` on). */
  workflow_type?: string;
  version?: string;
  /** Why the step does nothing (e.g. `already loaded`). */
  skipped?: string;
}

function progress(options: DeployOptions, step: LoadStep, detail?: LoadProgressDetail): void {
  try {
    options.onProgress?.(step, detail);
  } catch {
    // A progress view must never fail a deploy.
  }
}


const HOLDERS_LIMIT = 100;
/** How often (in archive bytes) a load reports progress through the hash step. */
const PROGRESS_STEP_BYTES = 1 << 20;
/** A load collects garbage once checking modules has grown the heap by this much (see runtime/heap.ts). */
const COLLECT_GROWTH_BYTES = 8 << 20;

/** The archive a load reads: where its bytes are, how to store it, and whether it changed. */
interface LoadInput {
  source: ZipSource;
  /** What the archive file is written from (the open file's descriptor, or the bytes). */
  stored: ArchiveInput;
  close(): void;
}

/** The whole archive of a load, for a store that keeps archives as rows (PostgreSQL). */
function storedBytes(input: LoadInput): Uint8Array {
  const stored = input.stored;
  if ('bytes' in stored) return stored.bytes;
  const bytes = Buffer.allocUnsafe(stored.size);
  for (let at = 0; at < stored.size; ) {
    const n = readSync(stored.fd, bytes, at, stored.size - at, at);
    if (n === 0) throw new AionError('usage', 'the archive file shrank while it was being loaded');
    at += n;
  }
  stored.unchanged?.();
  return bytes;
}

/** A scanned package's modules by name → byte size. */
function moduleSizes(pkg: ScannedPackage): Map<string, number> {
  return new Map([...pkg.modules].map(([name, entry]) => [name, entry.size]));
}


export class Engine {
  readonly catalog = new WorkflowCatalog();
  readonly gate = new ShutdownGate();
  /** Serializes load/route/unload in this process; taken before the catalog mutation lock. */
  readonly deployLock = new Mutex();
  /** Runs executing in this process (live pins) and the cache of resident ones. */
  readonly live: LiveRuns;
  /** Run lifecycle: start, drive, signal, terminate, recover. */
  readonly runs: RunManager;
  /** The run leases, on a store shared by a fleet (PostgreSQL); absent on LevelDB. */
  fleet: Fleet | undefined;
  private runtimeApi: RuntimeApi | undefined;
  private moduleRegistry: ModuleRegistryLike | undefined;
  private codePool: CodePool | undefined;
  private closed = false;
  /**
   * Types whose route a startup package took in memory: type → the version the persisted
   * route pointer still names. That version is routed again when this process stops, so
   * unload refuses it as routed.
   */
  private readonly shadowedRoutes = new Map<string, string>();
  /** Compiled input/output schemas, once per version (dropped at unload). */
  private readonly schemaCache = new SchemaCache();

  private constructor(
    readonly store: Store,
    readonly options: EngineOptions,
  ) {
    this.live = new LiveRuns(options.maxResident ?? DEFAULT_MAX_RESIDENT);
    this.live.onEvict = (runId) => this.codePool?.dropRun(runId);
    this.runs = new RunManager({
      store,
      catalog: this.catalog,
      gate: this.gate,
      live: this.live,
      warn: (m) => this.warn(m),
      schemas: this.schemaCache,
      code: async () => ({ pool: await this.pool(), ensure: async (entry) => void (await this.materialize(entry)) }),
    });
  }

  /**
   * A deploy operation: the deploy lock, then one exclusive store transaction (serialized with
   * every other process on a shared store; on LevelDB just the directory held), then the
   * catalog mutation lock — that order, everywhere.
   */
  private deployTransaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.deployLock.run(() => this.store.hold(fn, { exclusive: true }));
  }

  /** Reloads the catalog from the store (another process deployed meanwhile). */
  private async reloadCatalog(): Promise<void> {
    const { entries, routes, ramps, lost } = await restoreCatalog(this.store, (m) => this.warn(m));
    this.catalog.reset(entries, routes, ramps, lost);
  }

  /** Opens the state directory and restores the catalog (no run is replayed, no archive unzipped). */
  static async open(options: EngineOptions): Promise<Engine> {
    let engine: Engine | undefined;
    const store = options.kv
      ? await Store.over(options.kv, options.stateDir)
      : options.store
        ? await Store.openUrl(options.store, { create: options.create, onCatalogChange: async () => void (await engine?.reloadCatalog()) })
        : await Store.open(options.stateDir, {
          create: options.create,
          lockTimeoutMs: options.lockTimeoutMs,
          onWait: options.onWait,
          whileWaiting: options.whileWaiting,
          command: options.command,
          idleReleaseMs: options.releaseIdleMs,
          // Another process may have deployed while the directory was let go of.
          onReacquire: async () => {
            if (!engine) return;
            const { entries, routes, ramps, lost } = await restoreCatalog(engine.store, (m) => engine!.warn(m));
            engine.catalog.reset(entries, routes, ramps, lost);
          },
        });
    engine = new Engine(store, options);
    try {
      if (options.store) {
        const { Fleet } = await import('./lease.js');
        engine.fleet = new Fleet(store.backend as PgKV, options.worker ?? 'command');
        engine.fleet.onWarning = (m) => engine!.warn(m);
        const fleet = engine.fleet;
        engine.runs.leasedBy((workflowId) => fleet.mayDrive(workflowId));
      }
      const { entries, routes, ramps, lost } = await restoreCatalog(store, (m) => engine.warn(m));
      engine.catalog.reset(entries, routes, ramps, lost);
      if (options.create) await engine.tidyArchives();
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
    return engine;
  }

  private archivesTidied = false;

  /**
   * Removes archive files no package row names (a load killed between its file and its batch,
   * an unload killed between its batch and the file's removal) and leftover temp files, once:
   * when a command that creates the directory opens it, or at the first deploy mutation (with
   * the deploy lock held, so never under a load between its file and its batch). Read commands
   * never do it. A failure is a warning (doctor reports what is left).
   */
  private async tidyArchives(): Promise<void> {
    const files = this.store.archives;
    if (this.archivesTidied || !files) return;
    this.archivesTidied = true;
    try {
      await this.store.hold(async () => files.removeOrphans(await this.store.referencedVersions()));
    } catch (error) {
      this.warn(`could not remove orphan archive files: ${(error as Error).message}`);
    }
  }

  warn(message: string): void {
    this.options.onWarning?.(message);
  }

  private runtimeLoading: Promise<{ api: RuntimeApi; registry: ModuleRegistryLike }> | undefined;
  private poolCreating: Promise<CodePool> | undefined;

  /** The module runtime, imported on first use (deploy reads and listings never pay for it). Concurrent callers share one. */
  runtime(): Promise<{ api: RuntimeApi; registry: ModuleRegistryLike }> {
    this.runtimeLoading ??= (async () => {
      this.runtimeApi = await loadRuntime();
      this.moduleRegistry = new this.runtimeApi.ModuleRegistry();
      return { api: this.runtimeApi, registry: this.moduleRegistry };
    })();
    return this.runtimeLoading;
  }

  /** The worker threads that run user code, started on first use. */
  pool(): Promise<CodePool> {
    this.poolCreating ??= (async () => {
      const rt = await this.runtime();
      this.codePool = new rt.api.CodePool(
        { ...rt.api.defaultLimits(), ...this.options.limits },
        {
          names: (version) => [...(rt.registry.modules(version)?.keys() ?? [])],
          source: (version, name) => rt.registry.source(version, name),
        },
      );
      return this.codePool;
    })();
    return this.poolCreating;
  }

  /**
   * Makes a loaded version's modules runnable in this process: checks its stored archive still
   * hashes to its version (entry by entry, holding none of it) and registers its modules, whose
   * sources are then read from that file when a code thread asks for one (once per version;
   * the file stays open while the version is registered). A format-1 directory's archive, kept
   * in LevelDB, is read whole as before. Fails `store` when the archive is missing or no longer
   * verifies.
   */
  async materialize(entry: VersionEntry): Promise<{ api: RuntimeApi; registry: ModuleRegistryLike }> {
    const rt = await this.runtime();
    if (rt.registry.has(entry.version)) return rt;
    const label = `${entry.workflowType} ${entry.version.slice(0, 12)}`;
    const { readPackage, scanPackage, storedSource, storedArchiveLimits, ArchiveTexts } = await import('../package/index.js');
    const unverified = (error: unknown) =>
      new AionError('store', `the stored archive of ${label} no longer verifies: ${(error as Error).message}`, { hint: 'load the archive again', cause: error });
    const stored = this.store.archives?.open(entry.version);
    if (stored) {
      const file = storedSource(stored);
      let scanned: ScannedPackage;
      try {
        scanned = scanPackage(file, storedArchiveLimits(stored.size));
      } catch (error) {
        file.close();
        throw unverified(error);
      }
      if (scanned.version !== entry.version) {
        file.close();
        throw new AionError('store', `the stored archive of ${label} hashes to ${scanned.version.slice(0, 12)}`, { hint: 'load the archive again' });
      }
      rt.registry.registerChecked(entry.version, moduleSizes(scanned), new ArchiveTexts(file, scanned.modules, true));
      return rt;
    }
    const bytes = await this.store.get(K.archive(entry.workflowType, entry.version));
    if (!bytes) throw new AionError('store', `the archive of ${label} is missing from the state directory`, { hint: 'load the archive again' });
    let pkg: AionPackage;
    try {
      pkg = readPackage(bytes, storedArchiveLimits(bytes.length));
    } catch (error) {
      throw unverified(error);
    }
    if (pkg.version !== entry.version) throw new AionError('store', `the stored archive of ${label} hashes to ${pkg.version.slice(0, 12)}`);
    if (!rt.registry.has(entry.version)) rt.registry.register(entry.version, pkg.modules);
    return rt;
  }

  // --- load ---------------------------------------------------------------------------------

  /**
   * Validates a package, registers its modules, verifies the entry of every workflow type it
   * exports, stores its archive file, then persists rows, route pointers and deploy record in
   * one synchronous batch, then routes new starts of each non-internal type to it: the archive
   * is the unit, all of its types or none. The archive is read entry by entry and never held
   * whole: each module is inflated, checked (UTF-8, hash, compiles) and dropped; the code
   * threads read sources from the archive when they need them. Schemas are compiled (ajv
   * loaded) only for a package that has some.
   *
   * Failures: `invalid_package` (archive, limits, modules, schemas or any entry), `manifest_mismatch` (same version,
   * different manifest: the resident version stays), `usage` (no such file, not a regular file,
   * the file changed while loading), `shutting_down`, `store` (nothing was persisted and
   * nothing routed; retrying is idempotent). On every failure the catalog, the routes and the
   * state directory are untouched. Lock order: deploy lock, mutation lock.
   */
  async loadPackage(source: LoadSource, options: DeployOptions = {}): Promise<LoadOutcome> {
    return admitted(this.gate, 'load', async () => {
      const pkgApi = await import('../package/index.js');
      const { api, registry } = await this.runtime();
      progress(options, 'read');
      // Bounded: a FIFO, a device or an oversized file is refused before it is read.
      const input: LoadInput =
        'bytes' in source
          ? { source: pkgApi.bytesSource(source.bytes), stored: { bytes: source.bytes }, close: () => {} }
          : (() => {
              const file = pkgApi.openArchiveFile(source.path, options.limits ?? {});
              return { source: file.source, stored: { fd: file.source.fd, size: file.source.size, unchanged: file.unchanged }, close: file.close };
            })();
      try {
        const total = input.source.size;
        progress(options, 'read', { bytes: total, total });
        progress(options, 'validate', { bytes: total, total });
        // Every module is compiled as it goes by (as load always has), its text then dropped;
        // the first that does not compile is reported once the archive itself is valid.
        let compileError: unknown;
        let reported = 0;
        api.heapMark();
        const scanned = pkgApi.scanPackage(input.source, options.limits ?? {}, {
          beforeHash: () => progress(options, 'hash', { bytes: 0, total }),
          onModule: (name, bytes) => {
            if (compileError !== undefined) return;
            try {
              api.checkModule(name, bytes);
            } catch (error) {
              compileError = error;
            }
            // Dead module text piles up in V8's old generation: collect it as we go (see heap.ts).
            api.collectGarbage(COLLECT_GROWTH_BYTES);
          },
          onProgress: options.onProgress && ((done, all) => {
            if (done - reported < PROGRESS_STEP_BYTES && done < all) return;
            reported = done;
            progress(options, 'hash', { bytes: done, total: all });
          }),
        });
        if (compileError !== undefined) throw compileError;
        if (pkgApi.hasSchemas(scanned.manifest)) await pkgApi.checkSchemas(scanned.manifest);
        faultPoint('load.validated');
        return await this.deployTransaction(async () => {
          const release = await this.catalog.beginMutation();
          try {
            return await this.loadLocked(scanned, input, api, registry, options);
          } finally {
            release();
          }
        });
      } finally {
        // A startup package is never stored: its modules are read from this input for as long
        // as the process runs.
        if (!options.startup) input.close();
      }
    });
  }

  private async loadLocked(
    pkg: ScannedPackage,
    input: LoadInput,
    api: RuntimeApi,
    registry: ModuleRegistryLike,
    options: DeployOptions,
  ): Promise<LoadOutcome> {
    if (!options.dryRun && !options.startup) await this.tidyArchives();
    const specs = workflowSpecs(pkg.manifest);
    const types = specs.map((s) => s.workflow_type);
    const type = types[0]!;
    const version = pkg.version;
    const routes = this.catalog.snapshot().routes;
    const previousByType = Object.fromEntries(types.map((t) => [t, routes.get(t) ?? null])) as Record<string, string | null>;
    const previous = previousByType[type]!;
    const residents = types.map((t) => this.catalog.get(t, version));
    const route = options.route !== false;
    const routedTypes = specs.filter((s) => !s.internal).map((s) => s.workflow_type);
    const base = {
      workflow_type: type,
      version,
      workflow_types: types,
      label: pkg.manifest.label ?? null,
      deployed_entry_module: `${pkg.manifest.entry_module}$${version}`,
      entry_function: pkg.manifest.entry_function,
      route_changed: route && routedTypes.some((t) => previousByType[t] !== version),
      routed: route,
      previous,
    };
    const mismatch = residents.find((r) => r !== undefined && r.manifestDigest !== pkg.manifestDigest);
    if (mismatch) {
      throw new AionError(
        'manifest_mismatch',
        `version ${version.slice(0, 12)} of '${mismatch.workflowType}' is already loaded with a different manifest (loaded digest ${mismatch.manifestDigest.slice(0, 12)}, this archive ${pkg.manifestDigest.slice(0, 12)})`,
        {
          details: { workflow_type: mismatch.workflowType, version, loaded_manifest_digest: mismatch.manifestDigest, manifest_digest: pkg.manifestDigest },
          hint: 'a version is its modules: change a module to make a new version, or unload this one first',
        },
      );
    }
    const persisted = (e: VersionEntry | undefined): e is VersionEntry => e !== undefined && e.source !== 'startup';

    if (residents.every(persisted)) {
      const outcome: LoadOutcome = { ...base, freshly_loaded: false };
      progress(options, 'register', { workflow_type: type, version, skipped: 'already loaded' });
      if (options.dryRun) return { ...outcome, dry_run: true };
      if (options.startup) {
        // Persisted already: routed in memory, like any startup package, while this process runs.
        this.commitLoad(residents, true, true);
        return outcome;
      }
      progress(options, 'persist', { workflow_type: type, version });
      // Re-persist archive, rows and pointers: re-deploying is a routing intent, and a retry
      // after a failed persistence must complete it (it also restores a lost archive file).
      await this.persistLoad(residents, input, previousByType, route, options);
      progress(options, 'route', { workflow_type: type, version, ...(route ? {} : { skipped: 'not routed (--no-route)' }) });
      faultPoint('load.after-write');
      this.commitLoad(residents, route);
      faultPoint('load.swapped');
      return outcome;
    }

    // A dry run verifies in a scratch registry so that nothing is registered in this one.
    progress(options, 'register', { workflow_type: type, version });
    const target = options.dryRun ? new api.ModuleRegistry() : registry;
    const alreadyRegistered = target.has(version);
    // Sources are read from the archive when a thread asks: from the input until the archive
    // file is stored, then from that file.
    const { ArchiveTexts, storedSource } = await import('../package/index.js');
    const texts = new ArchiveTexts(input.source, pkg.modules, false);
    const deployed = target.registerChecked(version, moduleSizes(pkg), texts);
    faultPoint('load.registered');
    const unregister = () => {
      if (alreadyRegistered) return;
      for (const name of deployed) target.unregister(name);
    };
    progress(options, 'verify', { workflow_type: type, version });
    try {
      // Entry verification runs the modules' top level: user code, so in the workflow thread.
      // Every type's entry: one that does not verify refuses the whole package.
      const pool = await this.pool();
      for (const spec of specs) await api.verifyVersion(pool, target, version, spec);
    } catch (error) {
      unregister();
      throw error;
    }
    faultPoint('load.verified');
    // A startup version loaded for good: freshly persisted, not freshly registered.
    const outcome: LoadOutcome = { ...base, freshly_loaded: !residents.some((r) => r !== undefined) };
    if (options.dryRun) {
      unregister();
      return { ...outcome, dry_run: true };
    }
    const loadedAt = new Date().toISOString();
    const entries = specs.map((spec): VersionEntry => ({
      workflowType: spec.workflow_type,
      version,
      manifest: pkg.manifest,
      manifestDigest: pkg.manifestDigest,
      deployedEntryModule: `${spec.entry_module}$${version}`,
      entryFunction: spec.entry_function,
      loadedAt: residents.find((r) => r !== undefined)?.loadedAt ?? loadedAt,
      moduleNames: [...pkg.modules.keys()],
      archiveBytes: pkg.archiveBytes,
      ...(options.startup ? { source: 'startup' as const } : {}),
    }));
    if (options.startup) {
      // Held in memory only: nothing is written, the route lasts while this process runs.
      progress(options, 'route', { workflow_type: type, version });
      this.commitLoad(entries, true, true);
      return outcome;
    }
    progress(options, 'persist', { workflow_type: type, version });
    try {
      await this.persistLoad(entries, input, previousByType, route, options);
    } catch (error) {
      unregister();
      throw error;
    }
    // The input is closed when the load returns: read sources from the stored file instead. Should
    // that fail, the modules go (the load stands): the next run materializes them from the file.
    if (!alreadyRegistered && !this.store.archives) {
      unregister(); // archives as rows (PostgreSQL): read back whole when a run needs them
    } else if (!alreadyRegistered) {
      try {
        const stored = this.store.archives!.open(version);
        if (!stored) throw new Error('the file is not there');
        texts.rebind(storedSource(stored));
      } catch (error) {
        unregister();
        this.warn(`loaded ${type} ${version.slice(0, 12)}, but could not open its stored archive yet: ${(error as Error).message}`);
      }
    }
    progress(options, 'route', { workflow_type: type, version, ...(route ? {} : { skipped: 'not routed (--no-route)' }) });
    faultPoint('load.after-write');
    this.commitLoad(entries, route);
    faultPoint('load.swapped');
    return outcome;
  }

  /**
   * Swaps a package version's entries into the catalog (see WorkflowCatalog.commitLoad). A
   * persisted route now names the routed types' version, so no startup route shadows it; a
   * startup load (`startup`) remembers the persisted routes it shadows, which unload keeps.
   */
  private commitLoad(entries: readonly VersionEntry[], route: boolean, startup = false): void {
    const routes = this.catalog.snapshot().routes;
    for (const entry of entries) {
      if (!route || isInternal(entry)) continue;
      if (startup) {
        const persisted = routes.get(entry.workflowType);
        if (persisted !== undefined && !this.shadowedRoutes.has(entry.workflowType) && this.catalog.get(entry.workflowType, persisted)?.source !== 'startup') {
          this.shadowedRoutes.set(entry.workflowType, persisted);
        }
      } else this.shadowedRoutes.delete(entry.workflowType);
    }
    this.catalog.commitLoad(entries, route);
  }

  /**
   * Whether a version holds its type's route: routed now, or named by the persisted route
   * pointer that a startup package shadows while this process runs (routed again after it).
   * Unload and prune keep such a version. The one definition of "routed" for removal.
   */
  private holdsRoute(workflowType: string, version: string): boolean {
    return this.catalog.snapshot().routes.get(workflowType) === version || this.shadowedRoutes.get(workflowType) === version;
  }

  /**
   * Loads `serve --package` archives at boot: validated and verified as `load` does, held in
   * memory only (never persisted), each non-internal type routed to it while this process
   * runs. A version also persisted stays `loaded` and is routed the same way, in memory.
   * Fails as `load` does; the caller refuses to serve then.
   */
  async loadStartupPackage(file: string, limits: Partial<PackageLimits> = {}): Promise<LoadOutcome> {
    return this.loadPackage({ path: file }, { startup: true, limits });
  }

  /**
   * Stores the archive (a file beside the database, written and synced first; on a store
   * without one, PostgreSQL, a row in the same transaction), then writes a row per type, ONE
   * deploy record and — when the load routes — the route pointer of each non-internal type
   * (clearing its ramp) in one synchronous batch; all with the store held, so no other process
   * sees the file before its rows. If the batch fails, a file no other row names is removed.
   */
  private async persistLoad(entries: readonly VersionEntry[], input: LoadInput, previousByType: Record<string, string | null>, route: boolean, options: DeployOptions): Promise<void> {
    const primary = entries[0]!;
    const version = primary.version;
    const files = this.store.archives;
    await this.store.hold(async () => {
      // A load the disk cannot take fails store here, before anything is written.
      await this.store.checkRoom(input.source.size);
      faultPoint('load.before-write');
      // What is stored is what was validated: a file that changed since it was opened is not stored.
      let bytes: Uint8Array | undefined;
      if (files) await files.write(version, input.stored);
      else bytes = storedBytes(input);
      faultPoint('load.archive-written');
      const ops: StoreOp[] = [...this.store.formatOps()];
      for (const entry of entries) {
        const type = entry.workflowType;
        ops.push(putJSON(K.packageMeta(type, version), rowOf(entry)));
        // As a file, the archive is stored once per version (a type's row of the older layout
        // had its own copy in LevelDB, dropped here); as rows, once per type, as it is read back.
        ops.push(bytes !== undefined ? putBytes(K.archive(type, version), bytes) : del(K.archive(type, version)));
        if (route && !isInternal(entry)) {
          // Routing a load sends every new start to it: the ramp goes with the old route.
          ops.push(putBytes(K.route(type), new TextEncoder().encode(version)), del(K.ramp(type)));
        }
      }
      const several = entries.length > 1 ? { workflow_types: entries.map((e) => e.workflowType), previous_by_type: previousByType } : {};
      ops.push(this.auditOp('load', primary.workflowType, version, previousByType[primary.workflowType] ?? null, options, { ...(route ? {} : { routed: false }), ...several }));
      try {
        await this.store.write(ops, { sync: true });
      } catch (error) {
        if (files) await this.dropArchiveIfUnreferenced(version);
        throw error;
      }
    });
  }

  /**
   * Removes the archive file of `version` when no package row names it (after an unload's batch,
   * or a load's failed one). Never throws: a file left behind is an orphan, removed at the next
   * writable open (and reported by doctor). Called with the directory held.
   */
  private async dropArchiveIfUnreferenced(version: string): Promise<void> {
    try {
      if ((await this.store.referencedVersions()).has(version)) return;
      await this.store.archives?.remove(version);
    } catch (error) {
      this.warn(`could not remove the archive file of ${version.slice(0, 12)} (it is removed at the next write): ${(error as Error).message}`);
    }
  }


  // --- route --------------------------------------------------------------------------------

  /**
   * Re-points new starts of a type at an already-loaded version (full hash or unique prefix).
   * Failures: `not_found` (with `loaded`), `usage` (bad or ambiguous prefix), `shutting_down`,
   * `store` (the pointer was not written and the catalog not changed). Idempotent.
   */
  async routeWorkflowVersion(workflowType: string, ref: string, options: DeployOptions = {}): Promise<RouteOutcome> {
    return this.routeMutation('route', async () => this.routeLocked(workflowType, this.catalog.resolve(workflowType, ref), options), options.dryRun);
  }

  /**
   * Routes a type back to the version that was routed before the current one, as the deploy
   * history records it: walking the type's records newest first, the first load or route
   * record that moved the route to the current version (its `previous` differs from its
   * `version`; unload records are skipped) names the target in its `previous`. A rollback is
   * itself recorded as a `route` (message defaults to "rollback"), so a second rollback finds
   * that record and returns to where the first one started — it toggles, like `cd -`.
   *
   * Failures: `not_found` when the type has no routed version, when no record explains the
   * current route or it had no previous version, or when that version has since been
   * unloaded (`error.target`); `shutting_down`; `store`. Same locks and atomicity as a route.
   */
  async rollbackWorkflowVersion(workflowType: string, options: DeployOptions = {}): Promise<RouteOutcome> {
    return this.routeMutation('rollback', async () => {
      const current = this.catalog.snapshot().routes.get(workflowType);
      if (current === undefined) {
        throw new AionError('not_found', `workflow type '${workflowType}' has no routed version, so there is nothing to roll back`, {
          details: { workflow_type: workflowType },
          hint: "see what is loaded with 'aion versions'",
        });
      }
      const target = rollbackTargetOf(await this.deployHistory(workflowType), current, workflowType);
      const short = current.slice(0, 12);
      if (!target) {
        throw new AionError('not_found', `no version was routed before ${short} for '${workflowType}': nothing to roll back to`, {
          details: { workflow_type: workflowType, version: current, target: null },
          hint: `see the deploy history with 'aion history ${workflowType}', or route explicitly: aion route ${workflowType} <version>`,
        });
      }
      const entry = this.catalog.get(workflowType, target);
      if (!entry) {
        throw new AionError('not_found', `version ${target.slice(0, 12)}, routed before ${short} for '${workflowType}', has been unloaded: cannot roll back to it`, {
          details: { workflow_type: workflowType, version: current, target, loaded: this.catalog.versionsOf(workflowType).map((e) => e.version) },
          hint: `load its archive again (aion load <archive>), or pick a loaded version: aion versions ${workflowType}, then aion route ${workflowType} <version>`,
        });
      }
      return this.routeLocked(workflowType, entry, { ...options, message: options.message ?? 'rollback' });
    }, options.dryRun);
  }

  /** Admission, deploy lock, then mutation lock, around a route change. */
  private routeMutation(what: string, fn: () => Promise<RouteOutcome>, dryRun?: boolean): Promise<RouteOutcome> {
    return admitted(this.gate, what, () =>
      this.deployTransaction(async () => {
        const release = await this.catalog.beginMutation();
        try {
          if (!dryRun) await this.tidyArchives();
          return await fn();
        } finally {
          release();
        }
      }),
    );
  }

  /** Points the route at a resolved entry (clearing any ramp): pointer, ramp and audit record in one batch, then the swap. */
  private async routeLocked(workflowType: string, entry: VersionEntry, options: DeployOptions): Promise<RouteOutcome> {
    refuseInternal(entry, 'route');
    const previous = this.catalog.snapshot().routes.get(workflowType) ?? null;
    const outcome: RouteOutcome = { workflow_type: workflowType, version: entry.version, route_active: true, previous };
    if (options.dryRun) return outcome;
    faultPoint('route.before-write');
    await this.store.write(
      [putBytes(K.route(workflowType), new TextEncoder().encode(entry.version)), del(K.ramp(workflowType)), this.auditOp('route', workflowType, entry.version, previous, options)],
      { sync: true },
    );
    faultPoint('route.after-write');
    this.shadowedRoutes.delete(workflowType);
    this.catalog.commitRoute(workflowType, entry.version);
    faultPoint('route.swapped');
    return outcome;
  }

  // --- ramp ---------------------------------------------------------------------------------

  /**
   * Sends `percent` of new starts of a type to a loaded version (the rest keep going to the
   * routed one), or with `ref` null clears the ramp. Which side a start takes depends on its
   * workflow id alone (see `takesRamp` in the catalog). The ramp is written with its audit
   * record in one synchronous batch, then swapped into the catalog; `route`, `rollback` and a
   * routing `load` clear it. Idempotent.
   *
   * Failures: `usage` (percent not in (0, 100) with two decimals at most, the version is the
   * routed one, bad or ambiguous prefix), `not_found` (unknown type or version, or the type has
   * no routed version to ramp from), `shutting_down`, `store` (nothing written, catalog as
   * before). Lock order: deploy lock, mutation lock.
   */
  async rampWorkflowVersion(workflowType: string, ref: string | null, percent: number | null, options: DeployOptions = {}): Promise<RampOutcome> {
    if (ref !== null) checkPercent(percent);
    return admitted(this.gate, 'ramp', () =>
      this.deployTransaction(async () => {
        const release = await this.catalog.beginMutation();
        try {
          return await this.rampLocked(workflowType, ref, percent, options);
        } finally {
          release();
        }
      }),
    );
  }

  private async rampLocked(workflowType: string, ref: string | null, percent: number | null, options: DeployOptions): Promise<RampOutcome> {
    if (!options.dryRun) await this.tidyArchives();
    const routed = this.catalog.snapshot().routes.get(workflowType) ?? null;
    const previousRamp = this.catalog.ramp(workflowType) ?? null;
    let ramp: Ramp | null = null;
    if (ref !== null) {
      const entry = this.catalog.resolve(workflowType, ref);
      refuseInternal(entry, 'ramp');
      if (routed === null) {
        throw new AionError('not_found', `workflow type '${workflowType}' has no routed version to ramp from`, {
          details: { workflow_type: workflowType, loaded: this.catalog.versionsOf(workflowType).map((e) => e.version) },
          hint: `route a version first: aion route ${workflowType} <version>`,
        });
      }
      if (entry.version === routed) {
        throw new AionError('usage', `version ${entry.version.slice(0, 12)} is already the routed version of '${workflowType}': ramp another version, or clear the ramp with --clear`, {
          details: { workflow_type: workflowType, version: entry.version },
        });
      }
      ramp = { version: entry.version, percent: percent! };
    } else if (this.catalog.versionsOf(workflowType).length === 0) {
      throw notLoaded(workflowType, '--clear', []);
    }
    const outcome: RampOutcome = { workflow_type: workflowType, routed, ramping: ramp ? { ...ramp } : null, previous_ramp: previousRamp ? { ...previousRamp } : null };
    if (options.dryRun) return { ...outcome, dry_run: true };
    faultPoint('ramp.before-write');
    await this.store.write(
      [
        ramp ? putJSON(K.ramp(workflowType), ramp) : del(K.ramp(workflowType)),
        this.auditOp('ramp', workflowType, (ramp ?? previousRamp)?.version ?? routed ?? '', routed, options, { ramp: ramp ? { ...ramp } : null }),
      ],
      { sync: true },
    );
    faultPoint('ramp.after-write');
    this.catalog.commitRamp(workflowType, ramp);
    return outcome;
  }

  // --- list ---------------------------------------------------------------------------------

  /**
   * Every loaded version (of one type, or all) sorted by (workflow_type, loaded_at), with its
   * routing flag and pin counts read from the pin index. Never waits on a deploy mutation.
   * Fails `not_found` for a type with no loaded version when a type is given.
   */
  async listWorkflowVersions(workflowType?: string): Promise<VersionInfo[]> {
    const snapshot = this.catalog.snapshot();
    const entries = this.catalog.list(workflowType);
    const targets = await this.rollbackTargets(workflowType);
    if (workflowType !== undefined && entries.length === 0) {
      const known = [...snapshot.versions.keys()].sort();
      throw new AionError('not_found', `workflow type '${workflowType}' has no loaded versions`, {
        details: { workflow_type: workflowType, loaded_types: known },
        hint: known.length > 0 ? `loaded types: ${known.join(', ')}` : 'load a package first: aion load <archive>',
      });
    }
    const result: VersionInfo[] = [];
    for (const entry of entries) {
      const pins = await readVersionPins(this.store, entry.workflowType, entry.version, 0);
      // Those executing here, and on a shared store those other live workers lease (any host).
      const live = this.live.count(entry.workflowType, entry.version) + (this.fleet ? await this.fleet.liveRunsOn(entry.workflowType, entry.version) : 0);
      const routeActive = snapshot.routes.get(entry.workflowType) === entry.version;
      const ramp = snapshot.ramps.get(entry.workflowType);
      const ramping = ramp?.version === entry.version;
      const counts = { live, recoverable: Math.max(0, pins.runsTotal - live), recorded_children: pins.childrenTotal };
      const pinned = counts.live + counts.recoverable + counts.recorded_children + this.catalog.inFlightStarts(entry.workflowType, entry.version) > 0;
      result.push({
        workflow_type: entry.workflowType,
        version: entry.version,
        deployed_entry_module: entry.deployedEntryModule,
        entry_function: entry.entryFunction,
        manifest_version: entry.manifest.format_version,
        manifest_digest: entry.manifestDigest,
        loaded_at: entry.loadedAt,
        label: entry.manifest.label ?? null,
        route_active: routeActive,
        ramp_percent: ramping ? ramp!.percent : null,
        rollback_target: targets.get(entry.workflowType) === entry.version,
        pins: counts,
        package_types: packageTypes(entry.manifest),
        internal: isInternal(entry),
        source: entry.source ?? 'loaded',
        state: routeActive ? 'routed' : ramping ? 'ramping' : pinned ? 'draining' : 'drained',
      });
    }
    return result;
  }

  /**
   * One rollout summary per type (of one, or all): routed, ramping, rollback target, the
   * draining and drained versions and active runs per version. Built on the version list,
   * so it never waits on a deploy mutation; fails `not_found` for an unknown given type.
   */
  async rolloutStatus(workflowType?: string): Promise<RolloutStatus[]> {
    const versions = await this.listWorkflowVersions(workflowType);
    const byType = new Map<string, VersionInfo[]>();
    for (const v of versions) {
      let list = byType.get(v.workflow_type);
      if (!list) byType.set(v.workflow_type, (list = []));
      list.push(v);
    }
    return [...byType].map(([type, list]) => {
      const routed = list.find((v) => v.state === 'routed');
      const ramping = list.find((v) => v.state === 'ramping');
      const runs: Record<string, { running: number }> = {};
      for (const v of list) {
        const running = v.pins.live + v.pins.recoverable;
        if (running > 0) runs[v.version] = { running };
      }
      return {
        workflow_type: type,
        routed: routed?.version ?? null,
        label: routed?.label ?? null,
        source: routed?.source ?? null,
        ramping: ramping ? { version: ramping.version, percent: ramping.ramp_percent!, label: ramping.label } : null,
        rollback_target: list.find((v) => v.rollback_target)?.version ?? null,
        draining: list.filter((v) => v.state === 'draining').map((v) => ({ version: v.version, pins: v.pins })),
        drained: list.filter((v) => v.state === 'drained').map((v) => v.version),
        runs,
      };
    });
  }

  /** Every holder of one loaded version (full hash or unique prefix), at most 100 listed. */
  async versionHolders(workflowType: string, ref: string): Promise<HoldersOutcome> {
    const entry = this.catalog.resolve(workflowType, ref);
    const { holders, total } = await this.pinHolders(workflowType, entry.version);
    return { workflow_type: workflowType, version: entry.version, holders, holders_total: total };
  }

  /**
   * What `rollback` would route each routed type (of one, or all) to, from one read of the
   * deploy history: type → version (only types whose target is known; it may be unloaded).
   */
  async rollbackTargets(workflowType?: string): Promise<Map<string, string>> {
    const routes = this.catalog.snapshot().routes;
    const targets = new Map<string, string>();
    if (workflowType !== undefined ? !routes.has(workflowType) : routes.size === 0) return targets;
    const byType = new Map<string, DeployRecord[]>();
    for (const r of await this.deployHistory(workflowType)) {
      // A load of several types counts in the history of each of them.
      for (const type of r.workflow_types ?? [r.workflow_type]) {
        let list = byType.get(type);
        if (!list) byType.set(type, (list = []));
        list.push(r);
      }
    }
    for (const [type, records] of byType) {
      const current = routes.get(type);
      const target = current === undefined ? null : rollbackTargetOf(records, current, type);
      if (target) targets.set(type, target);
    }
    return targets;
  }

  // --- unload -------------------------------------------------------------------------------

  /**
   * Removes a version nothing pins, with its persisted archive. Checked in order: the routed
   * version is refused (`route_active`); then the version is swapped out of the catalog FIRST,
   * so no racing resolution can produce it, and every pin holder is collected (in-flight
   * starts, live runs, recoverable runs, recorded children): any holder restores the version
   * and refuses (`version_pinned`). The archive and row are deleted before modules are
   * unregistered; if the delete fails the version is restored and nothing was unloaded.
   * Lock order: deploy lock, mutation lock.
   */
  async unloadWorkflowVersion(workflowType: string, ref: string, options: DeployOptions = {}): Promise<UnloadOutcome> {
    return admitted(this.gate, 'unload', () =>
      this.deployTransaction(async () => {
        const release = await this.catalog.beginMutation();
        try {
          return await this.unloadLocked(workflowType, ref, options);
        } finally {
          release();
        }
      }),
    );
  }

  /**
   * Unloads every drained version (of one type, or all) except the routed one, the ramping
   * one, the rollback target and the `keep` most recently loaded of the rest; the others
   * that something pins are kept (`pinned`). All candidates are swapped out of the catalog
   * first, their pins checked (a pinned one is restored), then every unload is written in ONE
   * synchronous batch (rows, archives, one `unload` record each, message "prune" or -m): a
   * failure restores them all and nothing was unloaded. Lock order: deploy lock, mutation lock.
   * Fails `usage` for a bad keep, `not_found` for an unknown given type, `store`.
   */
  async pruneVersions(workflowType: string | undefined, keep = 1, options: DeployOptions = {}): Promise<PruneOutcome> {
    if (!Number.isSafeInteger(keep) || keep < 0) throw new AionError('usage', `--keep must be a whole number ≥ 0, got ${JSON.stringify(keep)}`);
    return admitted(this.gate, 'prune', () =>
      this.deployTransaction(async () => {
        const release = await this.catalog.beginMutation();
        try {
          return await this.pruneLocked(workflowType, keep, options);
        } finally {
          release();
        }
      }),
    );
  }

  private async pruneLocked(workflowType: string | undefined, keep: number, options: DeployOptions): Promise<PruneOutcome> {
    if (!options.dryRun) await this.tidyArchives();
    if (workflowType !== undefined && this.catalog.versionsOf(workflowType).length === 0) throw notLoaded(workflowType, '', []);
    const snapshot = this.catalog.snapshot();
    const targets = await this.rollbackTargets(workflowType);
    const types = workflowType === undefined ? [...snapshot.versions.keys()].sort() : [workflowType];
    const kept: PruneOutcome['kept'] = [];
    const candidates: VersionEntry[] = [];
    for (const type of types) {
      const rest: VersionEntry[] = [];
      for (const entry of this.catalog.versionsOf(type)) {
        const reason = this.holdsRoute(type, entry.version) ? 'routed'
          : snapshot.ramps.get(type)?.version === entry.version ? 'ramping'
          : targets.get(type) === entry.version ? 'rollback_target'
          : undefined;
        if (reason) kept.push({ workflow_type: type, version: entry.version, reason });
        else rest.push(entry);
      }
      // versionsOf is oldest first: the newest `keep` of the rest stay.
      const newest = keep === 0 ? [] : rest.slice(-keep);
      for (const entry of rest) {
        if (newest.includes(entry)) kept.push({ workflow_type: type, version: entry.version, reason: 'keep' });
        else candidates.push(entry);
      }
    }
    // A package with several types unloads as a whole: only when every type of it may go.
    const groups = await this.pruneGroups(candidates, kept, snapshot);
    const removed: VersionEntry[] = [];
    const restoreAll = () => {
      for (const entry of removed) this.catalog.restore(entry);
    };
    const unloaded: VersionEntry[] = [];
    let committed = false;
    try {
      for (const group of groups) {
        let total = 0;
        for (const entry of group) {
          removed.push(this.catalog.swapOut(entry.workflowType, entry.version));
          total += (await this.pinHolders(entry.workflowType, entry.version)).total;
        }
        if (total > 0) {
          for (const entry of group) {
            this.catalog.restore(removed.pop()!);
            kept.push({ workflow_type: entry.workflowType, version: entry.version, reason: 'pinned' });
          }
        } else unloaded.push(...group);
      }
      const outcome: PruneOutcome = { unloaded: unloaded.map((e) => ({ workflow_type: e.workflowType, version: e.version })), kept };
      if (options.dryRun) {
        restoreAll();
        return { ...outcome, dry_run: true };
      }
      if (unloaded.length > 0) {
        const message = options.message ?? 'prune';
        await this.store.hold(async () => {
          await this.store.write(
            unloaded.flatMap((e) => [
              del(K.packageMeta(e.workflowType, e.version)),
              del(K.archive(e.workflowType, e.version)),
              this.auditOp('unload', e.workflowType, e.version, snapshot.routes.get(e.workflowType) ?? null, { ...options, message }),
            ]),
            { sync: true },
          );
          committed = true;
          for (const version of new Set(unloaded.map((e) => e.version))) await this.dropArchiveIfUnreferenced(version);
        });
      }
      for (const entry of unloaded) this.unregisterModules(entry);
      return outcome;
    } catch (error) {
      if (!committed) restoreAll();
      throw error;
    }
  }

  /**
   * Prune's candidates grouped by package version: a single-type version is a group of its
   * own; the types of a package form one group when every one of them may go (candidate, or
   * outside the pruned type and neither routed, ramping, rollback target nor kept), else its
   * candidates are kept for the reason its blocking type is kept.
   */
  private async pruneGroups(candidates: VersionEntry[], kept: PruneOutcome['kept'], snapshot: ReturnType<WorkflowCatalog['snapshot']>): Promise<VersionEntry[][]> {
    const keyOf = (e: VersionEntry) => `${e.workflowType}\x00${e.version}`;
    const isCandidate = new Set(candidates.map(keyOf));
    const done = new Set<string>();
    const groups: VersionEntry[][] = [];
    let allTargets: Map<string, string> | undefined;
    for (const entry of candidates) {
      if (done.has(keyOf(entry))) continue;
      const members = this.catalog.packageEntries(entry);
      for (const m of members) done.add(keyOf(m));
      if (members.length <= 1) {
        groups.push([entry]);
        continue;
      }
      let blocked: PruneOutcome['kept'][number]['reason'] | undefined;
      for (const m of members) {
        if (isCandidate.has(keyOf(m))) continue;
        const t = m.workflowType;
        allTargets ??= await this.rollbackTargets();
        blocked = kept.find((k) => k.workflow_type === t && k.version === m.version)?.reason
          ?? (this.holdsRoute(t, m.version) ? 'routed'
          : snapshot.ramps.get(t)?.version === m.version ? 'ramping'
          : allTargets.get(t) === m.version ? 'rollback_target' : undefined);
        if (blocked) break;
      }
      if (blocked) {
        for (const m of members) if (isCandidate.has(keyOf(m))) kept.push({ workflow_type: m.workflowType, version: m.version, reason: blocked });
      } else groups.push(members);
    }
    return groups;
  }

  private async unloadLocked(workflowType: string, ref: string, options: DeployOptions): Promise<UnloadOutcome> {
    if (!options.dryRun) await this.tidyArchives();
    const given = this.catalog.resolve(workflowType, ref);
    const version = given.version;
    const short = version.slice(0, 12);
    // The package version is the unit: every type of it goes, or none.
    const entries = this.catalog.packageEntries(given);
    const several = entries.length > 1;
    for (const entry of entries) {
      const type = entry.workflowType;
      const which = several ? ` (a type of package '${entries[0]!.workflowType}', which unloads as a whole)` : '';
      if (this.holdsRoute(type, version)) {
        const shadowed = this.catalog.snapshot().routes.get(type) !== version;
        throw new AionError('route_active', shadowed
          ? `version ${short} is the persisted route of '${type}'${which}: a startup package routes it only while this aion serve runs`
          : `version ${short} is the routed version of '${type}'${which}: new starts resolve it`, {
          details: { workflow_type: type, version, role: 'routed' },
          hint: await this.rerouteHint(type, entry),
        });
      }
      if (this.catalog.ramp(type)?.version === version) {
        throw new AionError('route_active', `version ${short} is the ramping version of '${type}'${which}: a share of new starts resolves it`, {
          details: { workflow_type: type, version, role: 'ramping' },
          hint: `clear the ramp first: aion ramp ${type} --clear (or promote it: aion route ${type} ${short})`,
        });
      }
    }
    const removed: VersionEntry[] = [];
    let committed = false;
    const restoreAll = () => {
      for (const entry of removed) this.catalog.restore(entry);
    };
    try {
      for (const entry of entries) removed.push(this.catalog.swapOut(entry.workflowType, version));
      faultPoint('unload.swapped-out');
      const holders: PinHolder[] = [];
      let total = 0;
      for (const entry of entries) {
        const found = await this.pinHolders(entry.workflowType, version);
        total += found.total;
        for (const h of found.holders) if (holders.length < HOLDERS_LIMIT) holders.push(several ? { ...h, workflow_type: entry.workflowType } : h);
      }
      if (total > 0) throw pinnedError(workflowType, version, holders, total);
      faultPoint('unload.checked');
      if (options.dryRun) {
        restoreAll();
        return { workflow_type: workflowType, version, unloaded: false, dry_run: true };
      }
      const ops: StoreOp[] = entries.flatMap((e) => [del(K.packageMeta(e.workflowType, version)), del(K.archive(e.workflowType, version))]);
      ops.push(this.auditOp('unload', workflowType, version, this.catalog.snapshot().routes.get(workflowType) ?? null, options, several ? { workflow_types: entries.map((e) => e.workflowType) } : {}));
      await this.store.hold(async () => {
        await this.store.write(ops, { sync: true });
        committed = true;
        faultPoint('unload.after-write');
        // The file goes after the batch: a crash in between leaves an orphan, never a row without it.
        await this.dropArchiveIfUnreferenced(version);
      });
    } catch (error) {
      if (!committed) restoreAll();
      throw error;
    }
    this.unregisterModules(removed[0]!);
    faultPoint('unload.unregistered');
    return { workflow_type: workflowType, version, unloaded: true };
  }

  /**
   * Where to route before unloading the routed version: promote the ramping version; else
   * the newest version loaded after it (a roll-forward); else the rollback target; else the
   * newest other version; else load another one.
   */
  private async rerouteHint(workflowType: string, routed: VersionEntry): Promise<string> {
    const ramp = this.catalog.ramp(workflowType);
    if (ramp) return `promote the ramping version first: aion route ${workflowType} ${ramp.version.slice(0, 12)}`;
    const all = this.catalog.versionsOf(workflowType);
    const newer = all.slice(all.indexOf(routed) + 1);
    if (newer.length > 0) return `route the newer version first: aion route ${workflowType} ${newer[newer.length - 1]!.version.slice(0, 12)}`;
    const target = (await this.rollbackTargets(workflowType)).get(workflowType);
    if (target && this.catalog.get(workflowType, target)) return `roll back first (to ${target.slice(0, 12)}): aion rollback ${workflowType}`;
    const others = all.filter((e) => e !== routed);
    if (others.length > 0) return `route another version first: aion route ${workflowType} ${others[others.length - 1]!.version.slice(0, 12)}`;
    return `load another version of '${workflowType}' first, then unload this one`;
  }

  /** Every holder of a version, in the contract's order of kinds, at most 100 listed. */
  async pinHolders(workflowType: string, version: string): Promise<{ holders: PinHolder[]; total: number }> {
    const holders: PinHolder[] = [];
    const inFlight = this.catalog.inFlightStarts(workflowType, version);
    for (let i = 0; i < inFlight && holders.length < HOLDERS_LIMIT; i++) holders.push({ kind: 'in_flight_start' });
    const pins = await readVersionPins(this.store, workflowType, version, HOLDERS_LIMIT);
    const live: PinHolder[] = [];
    const recoverable: PinHolder[] = [];
    // On a shared store a run is live when another live worker leases it (named in `worker`)
    // or when it executes here (this worker named).
    const lessees = this.fleet ? await this.fleet.lessees(pins.runs.map((r) => r.workflow_id)) : undefined;
    for (const run of pins.runs) {
      const worker = lessees?.get(run.workflow_id);
      if (worker !== undefined) live.push({ kind: 'live_run', workflow_id: run.workflow_id, run_id: run.run_id, worker });
      else if (this.live.isLive(run.workflow_id, run.run_id)) live.push({ kind: 'live_run', workflow_id: run.workflow_id, run_id: run.run_id, ...(this.fleet ? { worker: this.fleet.id } : {}) });
      else recoverable.push({ kind: 'recoverable_run', workflow_id: run.workflow_id, run_id: run.run_id });
    }
    const children: PinHolder[] = pins.children.map((c) => ({ kind: 'recorded_child', child_workflow_id: c.child_workflow_id, recorded_by: c.recorded_by }));
    for (const h of [...live, ...recoverable, ...children]) {
      if (holders.length >= HOLDERS_LIMIT) break;
      holders.push(h);
    }
    return { holders, total: inFlight + pins.runsTotal + pins.childrenTotal };
  }

  private unregisterModules(entry: VersionEntry): void {
    this.codePool?.dropVersion(entry.version);
    this.schemaCache.drop(entry.version);
    const registry = this.moduleRegistry;
    if (!registry || !registry.has(entry.version)) return;
    const host = new Set(registry.hostModules());
    const failures: string[] = [];
    for (const name of registry.deployedNames(entry.version)) {
      if (host.has(name.split('$')[0]!)) continue;
      try {
        registry.unregister(name);
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
    // The unload stands (the row and archive are gone, the names are unreachable); only
    // memory is retained, so this is a warning rather than a failure.
    if (failures.length > 0) this.warn(`unloaded ${entry.workflowType} ${entry.version.slice(0, 12)} but could not unregister ${failures.join(', ')}`);
  }

  // --- deploy history -----------------------------------------------------------------------

  private auditOp(operation: DeployRecord['operation'], type: string, version: string, previous: string | null, options: DeployOptions, extra: Partial<DeployRecord> = {}) {
    const at = (this.options.now ?? Date.now)();
    const message = options.message;
    const record: DeployRecord = {
      at: new Date(at).toISOString(),
      user: options.actor || currentActor(),
      pid: process.pid,
      operation,
      workflow_type: type,
      version,
      previous,
      ...extra,
      ...(message === undefined ? {} : { message }),
    };
    return appendAudit(record);
  }

  /**
   * The deploy history (of one type, or all), oldest first; with `limit`, only the newest
   * `limit` records, read from the end of the log. Corrupt records are skipped with a warning.
   */
  async deployHistory(workflowType?: string, limit?: number): Promise<DeployRecord[]> {
    const records: DeployRecord[] = [];
    const range = { ...K.auditRange(), reverse: limit !== undefined };
    for await (const [, record] of this.store.scanJSON<DeployRecord>(range, (k) => this.warn(`skipping corrupt deploy record ${k}`))) {
      if (limit !== undefined && records.length >= limit) break;
      if (workflowType === undefined || record.workflow_type === workflowType || record.workflow_types?.includes(workflowType)) records.push(record);
    }
    return limit === undefined ? records : records.reverse();
  }

  // --- lifecycle ----------------------------------------------------------------------------

  /** Closes the gate, waits for admitted operations and runs in progress, closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.gate.close();
    // Runs being advanced finish their current step before the store goes away.
    await this.runs.settle();
    await this.store.flush().catch((error) => this.warn(`could not flush the state directory: ${(error as Error).message}`));
    await this.codePool?.close();
    this.live.clear();
    await this.fleet?.stop();
    await this.store.close();
  }
}

/**
 * The rollback rule, defined once: walking a type's deploy records newest first, the first
 * `load` or `route` record that moved the route to `current` (its `previous` differs from its
 * `version`; ramp, unload and --no-route load records are skipped) names the target in its
 * `previous`. Null when nothing was routed before `current`.
 */
export function rollbackTargetOf(records: readonly DeployRecord[], current: string, workflowType?: string): string | null {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    // A load of several types records each type's previous route.
    const previous = workflowType !== undefined && r.previous_by_type && workflowType in r.previous_by_type ? r.previous_by_type[workflowType]! : r.previous;
    if ((r.operation !== 'load' && r.operation !== 'route') || r.routed === false || r.version !== current || previous === r.version) continue;
    return previous;
  }
  return null;
}

/** Routes and ramps never name an internal type: `usage`. */
function refuseInternal(entry: VersionEntry, what: string): void {
  if (!isInternal(entry)) return;
  throw new AionError('usage', `workflow type '${entry.workflowType}' is internal to package '${entry.manifest.workflow_type}': it is never routed, so it cannot be given a ${what}`, {
    details: { workflow_type: entry.workflowType, internal: true },
    hint: `${what} the package's own type instead: aion ${what} ${entry.manifest.workflow_type} ...`,
  });
}

function pinnedError(workflowType: string, version: string, holders: PinHolder[], total: number): AionError {
  return new AionError('version_pinned', `version ${version.slice(0, 12)} of '${workflowType}' is pinned by ${total} holder${total === 1 ? '' : 's'}: ${describeHolders(holders, total)}`, {
    details: { workflow_type: workflowType, version, pinned_by: holders[0], holders, holders_total: total },
    hint: holdersHint(workflowType, version, holders),
  });
}

export { describeHolder };

/** A ramp percent: a number with 0 < percent < 100 and at most two decimals; else `usage`. */
export function checkPercent(percent: unknown): asserts percent is number {
  const ok = typeof percent === 'number' && Number.isFinite(percent) && percent > 0 && percent < 100 && Math.abs(Math.round(percent * 100) - percent * 100) < 1e-6;
  if (!ok) throw new AionError('usage', `a ramp percent must be a number greater than 0 and less than 100 with at most two decimals, got ${JSON.stringify(percent ?? null)}`, { hint: 'e.g. aion ramp <type> <version> 5, or 12.5' });
}

export type { PackageRow };
