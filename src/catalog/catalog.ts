// WorkflowCatalog: which versions are loaded and which one each workflow type routes to.
//
// Readers take the current snapshot, an immutable value replaced whole by every mutation, so
// they never wait on a mutation and never see half of one. Mutations are serialized by the
// catalog mutation lock (lock order everywhere: the engine's deploy lock first, then this).
// A start resolves the routed version and holds an in-flight pin on it until the start is
// durably recorded; unload refuses while such a pin exists.
//
// A type may also ramp: send a percentage of new starts to a second version. Which side a
// start takes depends on its workflow id alone (`takesRamp`, the one definition of the rule).
import { createHash } from 'node:crypto';
import { AionError } from '../errors.js';
import { Mutex } from '../concurrency.js';
import { packageTypes, workflowSpec } from '../package/manifest.js';
import type { Manifest, WorkflowSpec } from '../package/types.js';

export interface VersionEntry {
  readonly workflowType: string;
  readonly version: string;
  readonly manifest: Manifest;
  readonly manifestDigest: string;
  readonly deployedEntryModule: string;
  readonly entryFunction: string;
  /** RFC 3339 UTC. */
  readonly loadedAt: string;
  readonly moduleNames: readonly string[];
  readonly archiveBytes: number;
  /**
   * `startup`: given to this `aion serve` with --package, held in memory only (its route too);
   * absent or `loaded`: persisted in the state directory.
   */
  readonly source?: 'loaded' | 'startup';
}

/** What a version entry's type is: its entry, activities, timeout, schemas, internal flag. */
export function specOf(entry: VersionEntry): WorkflowSpec {
  const spec = workflowSpec(entry.manifest, entry.workflowType);
  if (!spec) throw new Error(`internal: the manifest of ${entry.version.slice(0, 12)} does not define '${entry.workflowType}'`);
  return spec;
}

/** Whether a type of a package is internal: started only as a child by that package's workflows, never routed. */
export function isInternal(entry: VersionEntry): boolean {
  return specOf(entry).internal;
}

/** A ramp: `percent` (0 < percent < 100, two decimals at most) of new starts go to `version`. */
export interface Ramp {
  readonly version: string;
  readonly percent: number;
}

export interface CatalogSnapshot {
  readonly versions: ReadonlyMap<string, ReadonlyMap<string, VersionEntry>>;
  readonly routes: ReadonlyMap<string, string>;
  readonly ramps: ReadonlyMap<string, Ramp>;
}

/**
 * Whether a start with this workflow id takes the ramping version: the first 4 bytes of
 * sha256(workflow_id) as a big-endian u32, mod 10000, below percent × 100. Depends on the id
 * and the percent only, so an id lands on the same side in every process and after restarts.
 */
export function takesRamp(workflowId: string, percent: number): boolean {
  const bucket = createHash('sha256').update(workflowId, 'utf8').digest().readUInt32BE(0) % 10000;
  return bucket < Math.round(percent * 100);
}

/** An in-flight start's hold on a version; `release` is idempotent and must run on every path. */
export interface StartPin {
  readonly entry: VersionEntry;
  release(): void;
}

const EMPTY: CatalogSnapshot = Object.freeze({ versions: new Map(), routes: new Map(), ramps: new Map() });

const HEX = /^[0-9a-f]+$/;

export class WorkflowCatalog {
  private current: CatalogSnapshot = EMPTY;
  /**
   * Lost routes: type → the version its route pointer names, which is not loaded (its package
   * row was corrupt or missing at startup). The pointer is kept, not replaced: starts of the
   * type are refused naming that version until it is loaded again or the type routed anew.
   */
  private lost = new Map<string, string>();
  private readonly mutation = new Mutex();
  private readonly startPins = new Map<string, number>();

  snapshot(): CatalogSnapshot {
    return this.current;
  }

  /** Takes the catalog mutation lock. Callers must already hold the deploy lock. */
  beginMutation(): Promise<() => void> {
    return this.mutation.lock();
  }

  get(workflowType: string, version: string): VersionEntry | undefined {
    return this.current.versions.get(workflowType)?.get(version);
  }

  routed(workflowType: string): VersionEntry | undefined {
    const version = this.current.routes.get(workflowType);
    return version === undefined ? undefined : this.get(workflowType, version);
  }

  /** Versions of a type in load order (oldest first). */
  versionsOf(workflowType: string): VersionEntry[] {
    return [...(this.current.versions.get(workflowType)?.values() ?? [])].sort(byLoadedAt);
  }

  /** Every loaded version sorted by (workflow_type, loaded_at). */
  list(workflowType?: string): VersionEntry[] {
    const types = workflowType === undefined ? [...this.current.versions.keys()].sort() : [workflowType];
    return types.flatMap((t) => this.versionsOf(t));
  }

  /**
   * Resolves a full version or a unique prefix (≥ 4 hex characters) among the loaded versions
   * of a type. Fails `usage` for a malformed or ambiguous reference (listing the candidates)
   * and `not_found` (with `error.loaded`) when nothing matches.
   */
  resolve(workflowType: string, ref: string): VersionEntry {
    const lowered = ref.toLowerCase();
    if (!HEX.test(lowered) || lowered.length < 4 || lowered.length > 64) {
      throw new AionError('usage', `'${ref}' is not a version: expected 4 to 64 hex characters (a content hash or a unique prefix of one)`);
    }
    const loaded = this.versionsOf(workflowType);
    const matches = loaded.filter((e) => e.version.startsWith(lowered));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new AionError('usage', `version prefix '${ref}' is ambiguous for workflow type '${workflowType}': it matches ${matches.map((e) => e.version).join(', ')}`, {
        details: { candidates: matches.map((e) => e.version) },
        hint: 'give more characters of the version',
      });
    }
    throw notLoaded(workflowType, ref, loaded);
  }

  ramp(workflowType: string): Ramp | undefined {
    return this.current.ramps.get(workflowType);
  }

  /**
   * The version a new start of `workflowId` takes now: the ramping version when the type
   * ramps and the id falls on its side (`takesRamp`), else the routed one; undefined when the
   * type has no route. Starts, children and continue-as-new successors all resolve here.
   */
  startEntry(workflowType: string, workflowId: string): VersionEntry | undefined {
    const routed = this.routed(workflowType);
    if (!routed) return undefined;
    const ramp = this.current.ramps.get(workflowType);
    if (ramp && takesRamp(workflowId, ramp.percent)) return this.get(workflowType, ramp.version) ?? routed;
    return routed;
  }

  /**
   * Resolves the version a new start of `workflowId` takes (see `startEntry`) and pins it
   * until `release`. Fails `not_found` when the type has no routed version (naming the
   * loaded ones, e.g. after `load --no-route`).
   */
  pinStart(workflowType: string, workflowId: string): StartPin {
    const entry = this.startEntry(workflowType, workflowId);
    if (!entry) {
      const of = this.versionsOf(workflowType);
      const loaded = of.map((e) => e.version);
      if (of.length > 0 && of.every(isInternal)) {
        const owner = of[of.length - 1]!.manifest.workflow_type;
        throw new AionError('not_found', `workflow type '${workflowType}' is internal to package '${owner}': only that package's own workflows start it, as a child`, {
          details: { workflow_type: workflowType, internal: true, loaded },
          hint: `start the package's workflow instead: aion start ${owner}`,
        });
      }
      const lost = this.lost.get(workflowType);
      if (lost !== undefined) {
        const others = loaded.length === 0 ? 'no other version is loaded' : `loaded: ${loaded.map((v) => v.slice(0, 12)).join(', ')}`;
        throw new AionError('not_found', `the routed version ${lost.slice(0, 12)} of '${workflowType}' is not loaded: its package row is corrupt or missing, so new starts are refused rather than sent to another version (${others})`, {
          details: { workflow_type: workflowType, routed: lost, loaded },
          hint: `run 'aion doctor' (--repair rebuilds the row when its archive verifies), load its archive again, or route a loaded version: aion route ${workflowType} <version>`,
        });
      }
      throw new AionError('not_found', loaded.length === 0
        ? `workflow type '${workflowType}' has no loaded version`
        : `workflow type '${workflowType}' has no routed version (loaded, not routed: ${loaded.map((v) => v.slice(0, 12)).join(', ')})`, {
        details: { workflow_type: workflowType, loaded },
        hint: loaded.length === 0 ? 'load a package for it first: aion load <archive>' : `route one first: aion route ${workflowType} ${loaded[loaded.length - 1]!.slice(0, 12)}`,
      });
    }
    return this.pin(entry);
  }

  /** Pins a specific loaded version (a child or successor recorded earlier with it). */
  pin(entry: VersionEntry): StartPin {
    const k = pinKey(entry.workflowType, entry.version);
    this.startPins.set(k, (this.startPins.get(k) ?? 0) + 1);
    let released = false;
    return {
      entry,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.startPins.get(k) ?? 1) - 1;
        if (n <= 0) this.startPins.delete(k);
        else this.startPins.set(k, n);
      },
    };
  }

  inFlightStarts(workflowType: string, version: string): number {
    return this.startPins.get(pinKey(workflowType, version)) ?? 0;
  }

  // --- mutations: callers hold the mutation lock -------------------------------------------

  /**
   * Adds (or keeps) the entries of one package version — every type of it — and optionally
   * routes each non-internal type to it (clearing its ramp), in one swap. An entry replaces a
   * kept one only to change its source (a startup version loaded for good).
   */
  commitLoad(entries: readonly VersionEntry[], route: boolean): void {
    const versions = new Map(this.current.versions);
    const routes = new Map(this.current.routes);
    const ramps = new Map(this.current.ramps);
    for (const entry of entries) {
      const ofType = new Map(versions.get(entry.workflowType) ?? []);
      const kept = ofType.get(entry.version);
      if (!kept || (kept.source ?? 'loaded') !== (entry.source ?? 'loaded')) ofType.set(entry.version, entry);
      versions.set(entry.workflowType, ofType);
      if (route && !isInternal(entry)) {
        routes.set(entry.workflowType, entry.version);
        ramps.delete(entry.workflowType);
        this.lost.delete(entry.workflowType);
      } else if (this.lost.get(entry.workflowType) === entry.version) {
        // The lost routed version is loaded again: the kept pointer names it once more.
        routes.set(entry.workflowType, entry.version);
        this.lost.delete(entry.workflowType);
      }
    }
    this.swap({ versions, routes, ramps });
  }

  /** Routes a type to a loaded version; a route change always clears the type's ramp. */
  commitRoute(workflowType: string, version: string): void {
    if (!this.get(workflowType, version)) throw new Error(`internal: route to unloaded ${workflowType} ${version}`);
    const routes = new Map(this.current.routes);
    routes.set(workflowType, version);
    const ramps = new Map(this.current.ramps);
    ramps.delete(workflowType);
    this.lost.delete(workflowType);
    this.swap({ versions: this.current.versions, routes, ramps });
  }

  /** Sets (or, with null, clears) a type's ramp. The version must be loaded and not routed. */
  commitRamp(workflowType: string, ramp: Ramp | null): void {
    const ramps = new Map(this.current.ramps);
    if (ramp) {
      if (!this.get(workflowType, ramp.version)) throw new Error(`internal: ramp to unloaded ${workflowType} ${ramp.version}`);
      ramps.set(workflowType, ramp);
    } else ramps.delete(workflowType);
    this.swap({ versions: this.current.versions, routes: this.current.routes, ramps });
  }

  /**
   * Removes a version so that no resolution can produce it from now on; returns it so that
   * `restore` can put it back if the unload is refused. The version must not be routed.
   */
  swapOut(workflowType: string, version: string): VersionEntry {
    const entry = this.get(workflowType, version);
    if (!entry) throw new Error(`internal: swap out of unloaded ${workflowType} ${version}`);
    if (this.current.routes.get(workflowType) === version) throw new Error('internal: swap out of the routed version');
    if (this.current.ramps.get(workflowType)?.version === version) throw new Error('internal: swap out of the ramping version');
    const versions = new Map(this.current.versions);
    const ofType = new Map(versions.get(workflowType));
    ofType.delete(version);
    if (ofType.size === 0) versions.delete(workflowType);
    else versions.set(workflowType, ofType);
    this.swap({ versions, routes: this.current.routes, ramps: this.current.ramps });
    return entry;
  }

  restore(entry: VersionEntry): void {
    this.commitLoad([entry], false);
  }

  /** The entries of every type of a package version (the unit of load and unload), its own type first. */
  packageEntries(entry: VersionEntry): VersionEntry[] {
    return packageTypes(entry.manifest).flatMap((t) => {
      const e = this.get(t, entry.version);
      return e && e.manifestDigest === entry.manifestDigest ? [e] : [];
    });
  }

  /** Replaces the whole state (startup restore); `lost` are the routes to versions not loaded. */
  reset(entries: VersionEntry[], routes: Map<string, string>, ramps: Map<string, Ramp> = new Map(), lost: Map<string, string> = new Map()): void {
    this.lost = new Map(lost);
    const versions = new Map<string, Map<string, VersionEntry>>();
    for (const e of entries) {
      let ofType = versions.get(e.workflowType);
      if (!ofType) versions.set(e.workflowType, (ofType = new Map()));
      ofType.set(e.version, e);
    }
    this.swap({ versions, routes: new Map(routes), ramps: new Map(ramps) });
  }

  private swap(next: CatalogSnapshot): void {
    this.current = Object.freeze(next);
  }
}

export function notLoaded(workflowType: string, ref: string, loaded: VersionEntry[]): AionError {
  if (loaded.length === 0) {
    return new AionError('not_found', `workflow type '${workflowType}' has no loaded versions`, {
      details: { workflow_type: workflowType, version: ref, loaded: [] },
      hint: "see what is loaded with 'aion versions'",
    });
  }
  return new AionError('not_found', `version '${ref}' of workflow type '${workflowType}' is not loaded (loaded: ${loaded.map((e) => e.version.slice(0, 12)).join(', ')})`, {
    details: { workflow_type: workflowType, version: ref, loaded: loaded.map((e) => e.version) },
    hint: `see the loaded versions with 'aion versions ${workflowType}'`,
  });
}

function pinKey(workflowType: string, version: string): string {
  return `${workflowType}\x00${version}`;
}

function byLoadedAt(a: VersionEntry, b: VersionEntry): number {
  return a.loadedAt < b.loadedAt ? -1 : a.loadedAt > b.loadedAt ? 1 : a.version < b.version ? -1 : 1;
}
