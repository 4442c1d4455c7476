// The operation table: every operation a command can ask of the engine, declared once — its
// name (the protocol method), its parameters (their wire names and types, validated the same
// way embedded and over the control socket), whether it mutates the state directory, and how
// it maps to the engine. The embedded client, the remote client, the protocol's method list
// and `aion serve`'s dispatch are all derived from OPERATIONS; adding an operation is one row
// here plus its engine method and its command file.
//
// Params are the protocol's `params` object (snake_case, JSON values). Bad params are `usage`
// errors naming the field, raised before the engine is reached, so they never change state.
// Unknown params are refused too: a misspelt `dry_run` must not turn a dry run into a real one.
//
// This module is imported by clients (remote included): it imports engine *types* only.
import path from 'node:path';
import { currentActor } from '../actor.js';
import { AionError } from '../errors.js';
import { MAX_JSON_DEPTH, jsonDepth } from '../json.js';
import { directoryIdentity } from '../store/holder.js';
import type { Engine, LoadProgressDetail, LoadStep } from '../engine/engine.js';
import type { RunFilter } from '../engine/runs.js';

/** The protocol version of `aion serve`'s control socket (see protocol.ts). */
export const PROTOCOL_VERSION = 1;

/** How a parameter is checked; a trailing `?` makes it optional (absent or null). */
type Kind = 'string' | 'string?' | 'boolean?' | 'count?' | 'number' | 'number?' | 'path' | 'json';
type Schema = Readonly<Record<string, Kind>>;

type TypeOf<K extends Kind> = K extends 'string' | 'string?' | 'path' ? string : K extends 'boolean?' ? boolean : K extends 'count?' | 'number' | 'number?' ? number : unknown;
type IsOptional<K extends Kind> = K extends `${string}?` | 'json' ? true : false;

/** The typed params of a schema: required fields required, `?` fields (and json) optional. */
export type ParamsOf<S extends Schema> = { -readonly [F in keyof S as IsOptional<S[F]> extends true ? never : F]: TypeOf<S[F]> } & {
  -readonly [F in keyof S as IsOptional<S[F]> extends true ? F : never]?: TypeOf<S[F]> | undefined;
};

/** What only an in-process caller can pass (never over the socket). */
export interface LocalOptions {
  /** Load only: called as each step begins (progress views). */
  onProgress?: (step: LoadStep, detail?: LoadProgressDetail) => void;
}

interface Operation<S extends Schema, R> {
  /** Changes the state directory (loads, routes, unloads, runs); reads are false. */
  readonly mutates: boolean;
  readonly params: S;
  readonly run: (engine: Engine, params: ParamsOf<S>, local: LocalOptions) => Promise<R>;
}

function op<const S extends Schema, R>(spec: Operation<S, R>): Operation<S, R> {
  return spec;
}

/**
 * The parameters every deploy mutation takes. `actor` (the history's `user`) is filled in by
 * the client from its own environment, so a deploy through `aion serve` records the caller.
 */
const DEPLOY = { dry_run: 'boolean?', message: 'string?', actor: 'string?' } as const;

function deploy(p: { dry_run?: boolean | undefined; message?: string | undefined; actor?: string | undefined }) {
  return { dryRun: p.dry_run, message: p.message, actor: p.actor };
}

/** Load's archive limits from its params (absent: the defaults); a limit of 0 is `usage`. */
function archiveLimits(p: { max_archive_bytes?: number | undefined; max_inflated_bytes?: number | undefined; max_entries?: number | undefined }) {
  const limits = { maxArchiveBytes: p.max_archive_bytes, maxInflatedBytes: p.max_inflated_bytes, maxEntries: p.max_entries };
  for (const [field, value] of Object.entries(limits)) {
    if (value === 0) throw new AionError('usage', `load: limit '${field}' must be at least 1`);
  }
  return limits;
}

export const OPERATIONS = {
  load: op({
    mutates: true,
    // The archive limits travel with the request: the server reads the archive under the caller's.
    params: { archive: 'path', no_route: 'boolean?', max_archive_bytes: 'count?', max_inflated_bytes: 'count?', max_entries: 'count?', ...DEPLOY },
    run: (e, p, local) => e.loadPackage({ path: p.archive }, { ...deploy(p), route: !p.no_route, limits: archiveLimits(p), onProgress: local.onProgress }),
  }),
  route: op({
    mutates: true,
    params: { workflow_type: 'string', version: 'string', ...DEPLOY },
    run: (e, p) => e.routeWorkflowVersion(p.workflow_type, p.version, deploy(p)),
  }),
  ramp: op({
    mutates: true,
    params: { workflow_type: 'string', version: 'string?', percent: 'number?', clear: 'boolean?', ...DEPLOY },
    run: (e, p) => {
      if (p.clear) {
        if (p.version !== undefined || p.percent !== undefined) throw new AionError('usage', 'ramp: give a version and a percent, or --clear, not both');
        return e.rampWorkflowVersion(p.workflow_type, null, null, deploy(p));
      }
      if (p.version === undefined || p.percent === undefined) throw new AionError('usage', 'ramp: give a version and a percent (or --clear to end the ramp)');
      return e.rampWorkflowVersion(p.workflow_type, p.version, p.percent, deploy(p));
    },
  }),
  rollback: op({
    mutates: true,
    params: { workflow_type: 'string', ...DEPLOY },
    run: (e, p) => e.rollbackWorkflowVersion(p.workflow_type, deploy(p)),
  }),
  versions: op({
    mutates: false,
    params: { workflow_type: 'string?' },
    run: (e, p) => e.listWorkflowVersions(p.workflow_type),
  }),
  unload: op({
    mutates: true,
    params: { workflow_type: 'string', version: 'string', ...DEPLOY },
    run: (e, p) => e.unloadWorkflowVersion(p.workflow_type, p.version, deploy(p)),
  }),
  status: op({
    mutates: false,
    params: { workflow_type: 'string?' },
    run: (e, p) => e.rolloutStatus(p.workflow_type),
  }),
  holders: op({
    mutates: false,
    params: { workflow_type: 'string', version: 'string' },
    run: (e, p) => e.versionHolders(p.workflow_type, p.version),
  }),
  prune: op({
    mutates: true,
    params: { workflow_type: 'string?', keep: 'count?', ...DEPLOY },
    run: (e, p) => e.pruneVersions(p.workflow_type, p.keep ?? 1, deploy(p)),
  }),
  history: op({
    mutates: false,
    params: { workflow_type: 'string?', limit: 'count?' },
    run: (e, p) => e.deployHistory(p.workflow_type, p.limit),
  }),
  start: op({
    mutates: true,
    params: { workflow_type: 'string', input: 'json', workflow_id: 'string?' },
    run: (e, p) => e.runs.start(p.workflow_type, p.input ?? null, p.workflow_id === undefined ? {} : { workflowId: p.workflow_id }),
  }),
  signal: op({
    mutates: true,
    params: { workflow_id: 'string', name: 'string', input: 'json' },
    run: (e, p) => e.runs.signal(p.workflow_id, p.name, p.input ?? null),
  }),
  terminate: op({
    mutates: true,
    params: { workflow_id: 'string', reason: 'string' },
    run: (e, p) => e.runs.terminate(p.workflow_id, p.reason),
  }),
  runs: op({
    mutates: false,
    params: { type: 'string?', version: 'string?', status: 'string?' },
    run: (e, p) => {
      const filter: RunFilter = {};
      if (p.type !== undefined) filter.type = p.type;
      if (p.version !== undefined) filter.version = p.version;
      if (p.status !== undefined) filter.status = p.status;
      return e.runs.list(filter);
    },
  }),
  show: op({
    mutates: false,
    params: { workflow_id: 'string' },
    run: (e, p) => e.runs.show(p.workflow_id),
  }),
  hello: op({
    mutates: false,
    params: {},
    // state_dir_id says which directory this server serves: a client checks it against its own
    // (a copy of a served directory carries the holder file naming this socket).
    run: async (e) => ({ server: 'aion serve', v: PROTOCOL_VERSION, pid: process.pid, state_dir: e.options.stateDir, state_dir_id: directoryIdentity(e.options.stateDir) ?? null }),
  }),
};

type Table = typeof OPERATIONS;
export type OperationName = keyof Table;
export type ParamsFor<N extends OperationName> = ParamsOf<Table[N]['params']>;
export type ResultFor<N extends OperationName> = Awaited<ReturnType<Table[N]['run']>>;

/** The protocol's method list, in table order. */
export const METHODS = Object.keys(OPERATIONS) as OperationName[];

export function isOperation(name: string): name is OperationName {
  return Object.prototype.hasOwnProperty.call(OPERATIONS, name);
}

/** One method per operation; params may be omitted when every field is optional. */
export type Operations = {
  [N in OperationName]: (...args: {} extends ParamsFor<N> ? [params?: ParamsFor<N>, local?: LocalOptions] : [params: ParamsFor<N>, local?: LocalOptions]) => Promise<ResultFor<N>>;
};

export type Invoke = (name: OperationName, params: Record<string, unknown>, local: LocalOptions) => Promise<unknown>;

/**
 * Builds the client methods over one invoke function (in-process or over the socket). Paths
 * are resolved against this process's working directory: the server's is not the caller's.
 */
export function bindOperations(invoke: Invoke): Operations {
  const methods: Record<string, unknown> = {};
  for (const name of METHODS) {
    const schema: Schema = OPERATIONS[name].params;
    methods[name] = (params: Record<string, unknown> = {}, local: LocalOptions = {}) => {
      const wire = dropUndefined(params);
      for (const [field, kind] of Object.entries(schema)) {
        if (kind === 'path' && typeof wire[field] === 'string') wire[field] = path.resolve(wire[field] as string);
      }
      if ('actor' in schema && wire.actor === undefined) wire.actor = currentActor();
      return invoke(name, wire, local);
    };
  }
  return methods as Operations;
}

/** Validates wire params and runs the operation on an engine (embedded clients and `aion serve`). Never throws synchronously: a bad param is a rejected promise. */
export async function runOperation(engine: Engine, name: OperationName, raw: Record<string, unknown>, local: LocalOptions = {}): Promise<unknown> {
  const spec = OPERATIONS[name] as unknown as Operation<Schema, unknown>;
  const params = checkParams(name, spec.params, raw);
  return spec.run(engine, params as ParamsOf<Schema>, local);
}

/** `usage` for a field of the wrong type, a missing required one, or an unknown one. */
export function checkParams(name: string, schema: Schema, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of Object.keys(raw)) {
    if (!Object.prototype.hasOwnProperty.call(schema, field)) {
      const known = Object.keys(schema);
      throw new AionError('usage', `unknown parameter '${field}' for method '${name}' (${known.length > 0 ? `known: ${known.join(', ')}` : 'it takes none'})`);
    }
  }
  for (const [field, kind] of Object.entries(schema)) {
    const v = raw[field];
    const bad = (what: string) => new AionError('usage', `parameter '${field}' must be ${what} (method '${name}')`);
    if (kind === 'json') {
      // Nested at most as deep as `--input` may be (src/json.ts: one rule for both).
      if (jsonDepth(v ?? null) > MAX_JSON_DEPTH) throw new AionError('usage', `parameter '${field}' nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
      out[field] = v ?? null;
      continue;
    }
    if (v === undefined || v === null) {
      if (kind.endsWith('?')) continue;
      throw new AionError('usage', `method '${name}' needs parameter '${field}'`);
    }
    switch (kind) {
      case 'string':
      case 'string?':
        if (typeof v !== 'string') throw bad('a string');
        break;
      case 'path':
        if (typeof v !== 'string') throw bad('a string');
        if (!path.isAbsolute(v)) throw new AionError('usage', `'${field}' must be an absolute path, got '${v}'`);
        break;
      case 'boolean?':
        if (typeof v !== 'boolean') throw bad('a boolean');
        break;
      case 'count?':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad('a whole number ≥ 0');
        break;
      case 'number':
      case 'number?':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('a number');
        break;
    }
    out[field] = v;
  }
  return out;
}

function dropUndefined(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined) out[k] = v;
  return out;
}
