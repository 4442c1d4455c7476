// manifest.json: parsing, validation and serialization. Also the field validators that
// workflow.json shares. Every failure is AionError('invalid_package') whose message names the
// file and the field (`manifest.json: field 'timeout_seconds' must be ...`); nothing else
// happens on failure.
import { AionError } from '../errors.js';
import { MAX_JSON_DEPTH, jsonDepth } from '../json.js';
import { logicalNameProblem } from './names.js';
import { FORMAT_VERSION, type AdditionalWorkflow, type JsonSchema, type Manifest, type ManifestModule, type WorkflowSpec } from './types.js';

/** The keys of Manifest, in the order they are written. */
export const MANIFEST_KEYS = [
  'format_version',
  'workflow_type',
  'entry_module',
  'entry_function',
  'timeout_seconds',
  'activities',
  'version',
  'modules',
] as const satisfies readonly (keyof Manifest)[];
/** Optional manifest keys, written after the required ones when present. */
export const OPTIONAL_MANIFEST_KEYS = ['label', 'input_schema', 'output_schema', 'additional_workflows'] as const satisfies readonly (keyof Manifest)[];

/** The keys of an additional workflow, in the order they are written (the first three required). */
export const ADDITIONAL_KEYS = [
  'workflow_type',
  'entry_module',
  'entry_function',
  'activities',
  'timeout_seconds',
  'internal',
  'input_schema',
  'output_schema',
] as const satisfies readonly (keyof AdditionalWorkflow)[];
const ADDITIONAL_REQUIRED = ADDITIONAL_KEYS.slice(0, 3);
const ADDITIONAL_OPTIONAL = ADDITIONAL_KEYS.slice(3);
/** At most this many additional workflow types in one archive. */
export const MAX_ADDITIONAL_WORKFLOWS = 256;

const LABEL = /^[^\p{C}]{1,64}$/u;

/** An author label: 1 to 64 printable characters (no control or format characters). */
export function checkLabelField(value: unknown, file: string, field = 'label'): string {
  if (typeof value !== 'string' || !LABEL.test(value) || [...value].length > 64) {
    throw fieldError(file, field, `must be 1 to 64 printable characters, got ${describe(value)}`);
  }
  return value;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** Names every object inherits: never an export or activity a package can mean. */
const INHERITED = new Set(['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty']);
const VERSION_HEX = /^[0-9a-f]{64}$/;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    // JSON.stringify recurses: a value nested thousands deep overflows the stack. Name its kind.
    text = Array.isArray(value) ? 'a deeply nested array' : 'a deeply nested object';
  }
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}

export function fieldError(file: string, field: string, message: string): AionError {
  return new AionError('invalid_package', `${file}: field '${field}' ${message}`);
}

/** `value` must be a plain JSON object with all of `required`, any of `optional`, nothing else. */
export function checkObjectKeys(
  value: unknown,
  file: string,
  required: readonly string[],
  optional: readonly string[] = [],
  what = 'the top level',
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AionError('invalid_package', `${file}: ${what} must be a JSON object, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  const allowed = new Set([...required, ...optional]);
  for (const key of Object.keys(record)) {
    if (!allowed.has(key)) {
      throw new AionError('invalid_package', `${file}: unknown key ${JSON.stringify(key)} in ${what} (allowed: ${[...allowed].join(', ')})`);
    }
  }
  for (const key of required) {
    if (!Object.prototype.hasOwnProperty.call(record, key)) throw new AionError('invalid_package', `${file}: missing key '${key}' in ${what}`);
  }
  return record;
}

export function checkLogicalNameField(value: unknown, file: string, field: string): string {
  if (typeof value !== 'string') throw fieldError(file, field, `must be a logical module name (string), got ${describe(value)}`);
  const problem = logicalNameProblem(value);
  if (problem !== null) throw fieldError(file, field, `${JSON.stringify(value)} ${problem}`);
  return value;
}

export function checkIdentifierField(value: unknown, file: string, field: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || INHERITED.has(value)) {
    throw fieldError(file, field, `must be a JavaScript identifier naming an exported function, got ${describe(value)}`);
  }
  return value;
}

/** The largest `timeout_seconds`: one day. */
export const MAX_TIMEOUT_SECONDS = 86_400;

export function checkTimeoutField(value: unknown, file: string, field = 'timeout_seconds'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw fieldError(file, field, `must be an integer ≥ 1, got ${describe(value)}`);
  }
  // It is also each activity call's time bound (contract, "Workflow code limits").
  if (value > MAX_TIMEOUT_SECONDS) throw fieldError(file, field, `must be at most ${MAX_TIMEOUT_SECONDS} (one day), got ${value}`);
  return value;
}

/** A list of unique, non-empty identifier strings (activity names). */
export function checkActivitiesField(value: unknown, file: string, field = 'activities'): string[] {
  if (!Array.isArray(value)) throw fieldError(file, field, `must be an array of activity names, got ${describe(value)}`);
  const seen = new Set<string>();
  value.forEach((item, i) => {
    if (typeof item !== 'string' || !IDENTIFIER.test(item) || INHERITED.has(item)) {
      throw fieldError(file, `${field}[${i}]`, `must be a non-empty identifier string, got ${describe(item)}`);
    }
    if (seen.has(item)) throw fieldError(file, `${field}[${i}]`, `duplicates activity ${JSON.stringify(item)}`);
    seen.add(item);
  });
  return [...value] as string[];
}

/**
 * A JSON Schema's shape: `true`, `false` or a JSON object, nested at most MAX_JSON_DEPTH
 * deep. Whether it is a valid draft 2020-12 schema is checked by checkSchemas (schema.ts),
 * which compiles it; this check is what a reader can do without the schema library.
 */
export function checkSchemaField(value: unknown, file: string, field: string): JsonSchema {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fieldError(file, field, `must be a JSON Schema (an object, true or false), got ${describe(value)}`);
  }
  if (jsonDepth(value) > MAX_JSON_DEPTH) throw fieldError(file, field, `nests deeper than ${MAX_JSON_DEPTH} levels`);
  return value as Record<string, unknown>;
}

/**
 * `additional_workflows`: an array of {workflow_type, entry_module, entry_function,
 * activities?, timeout_seconds?, internal?, input_schema?, output_schema?}. Every workflow_type
 * follows the logical-name rules and is unique in the package (`primaryType` included).
 * Returns fresh objects holding exactly the fields given.
 */
export function checkAdditionalWorkflows(value: unknown, file: string, primaryType: string): AdditionalWorkflow[] {
  const field = 'additional_workflows';
  if (!Array.isArray(value)) throw fieldError(file, field, `must be an array of workflow types, got ${describe(value)}`);
  if (value.length > MAX_ADDITIONAL_WORKFLOWS) throw fieldError(file, field, `lists ${value.length} workflow types; at most ${MAX_ADDITIONAL_WORKFLOWS} are allowed`);
  const seen = new Set([primaryType]);
  return value.map((item, i) => {
    const at = `${field}[${i}]`;
    const record = checkObjectKeys(item, file, ADDITIONAL_REQUIRED, ADDITIONAL_OPTIONAL, `field '${at}'`);
    const type = checkLogicalNameField(record.workflow_type, file, `${at}.workflow_type`);
    if (seen.has(type)) throw fieldError(file, `${at}.workflow_type`, `duplicates workflow type ${JSON.stringify(type)} of this package`);
    seen.add(type);
    const out: AdditionalWorkflow = {
      workflow_type: type,
      entry_module: checkLogicalNameField(record.entry_module, file, `${at}.entry_module`),
      entry_function: checkIdentifierField(record.entry_function, file, `${at}.entry_function`),
    };
    if (record.activities !== undefined) out.activities = checkActivitiesField(record.activities, file, `${at}.activities`);
    if (record.timeout_seconds !== undefined) out.timeout_seconds = checkTimeoutField(record.timeout_seconds, file, `${at}.timeout_seconds`);
    if (record.internal !== undefined) {
      if (typeof record.internal !== 'boolean') throw fieldError(file, `${at}.internal`, `must be true or false, got ${describe(record.internal)}`);
      out.internal = record.internal;
    }
    if (record.input_schema !== undefined) out.input_schema = checkSchemaField(record.input_schema, file, `${at}.input_schema`);
    if (record.output_schema !== undefined) out.output_schema = checkSchemaField(record.output_schema, file, `${at}.output_schema`);
    return out;
  });
}

/** The fields a manifest and workflow.json share beyond the required ones: schemas and more types. */
interface ExtraFields {
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
  additional_workflows?: AdditionalWorkflow[];
}

/** Validates the optional schema and additional-workflow fields of a manifest or workflow.json record. */
export function checkExtraFields(record: Record<string, unknown>, file: string, primaryType: string): ExtraFields {
  const out: ExtraFields = {};
  if (record.input_schema !== undefined) out.input_schema = checkSchemaField(record.input_schema, file, 'input_schema');
  if (record.output_schema !== undefined) out.output_schema = checkSchemaField(record.output_schema, file, 'output_schema');
  if (record.additional_workflows !== undefined) out.additional_workflows = checkAdditionalWorkflows(record.additional_workflows, file, primaryType);
  return out;
}

/**
 * Every workflow type a manifest exports, its own first, with defaults applied (activities
 * `[]`, the package's timeout_seconds, not internal): the one definition of a type's spec.
 */
export function workflowSpecs(manifest: Manifest): WorkflowSpec[] {
  const primary: WorkflowSpec = {
    workflow_type: manifest.workflow_type,
    entry_module: manifest.entry_module,
    entry_function: manifest.entry_function,
    activities: manifest.activities,
    timeout_seconds: manifest.timeout_seconds,
    internal: false,
    ...(manifest.input_schema === undefined ? {} : { input_schema: manifest.input_schema }),
    ...(manifest.output_schema === undefined ? {} : { output_schema: manifest.output_schema }),
  };
  return [
    primary,
    ...(manifest.additional_workflows ?? []).map((w) => ({
      workflow_type: w.workflow_type,
      entry_module: w.entry_module,
      entry_function: w.entry_function,
      activities: w.activities ?? [],
      timeout_seconds: w.timeout_seconds ?? manifest.timeout_seconds,
      internal: w.internal ?? false,
      ...(w.input_schema === undefined ? {} : { input_schema: w.input_schema }),
      ...(w.output_schema === undefined ? {} : { output_schema: w.output_schema }),
    })),
  ];
}

/** The spec of one type of a manifest, or undefined when the package does not export it. */
export function workflowSpec(manifest: Manifest, workflowType: string): WorkflowSpec | undefined {
  return workflowSpecs(manifest).find((s) => s.workflow_type === workflowType);
}

/** Whether any type of a package has an input or output schema (only then is ajv imported). */
export function hasSchemas(manifest: Manifest): boolean {
  return workflowSpecs(manifest).some((s) => s.input_schema !== undefined || s.output_schema !== undefined);
}

/** The workflow types of a package, its own first. */
export function packageTypes(manifest: Manifest): string[] {
  return [manifest.workflow_type, ...(manifest.additional_workflows ?? []).map((w) => w.workflow_type)];
}

/**
 * Validates a parsed manifest.json value and returns a fresh Manifest holding exactly its
 * fields. `file` names the file in messages.
 */
export function validateManifest(value: unknown, file = 'manifest.json'): Manifest {
  const record = checkObjectKeys(value, file, MANIFEST_KEYS, OPTIONAL_MANIFEST_KEYS);
  if (record.format_version !== FORMAT_VERSION) {
    throw new AionError(
      'invalid_package',
      `${file}: unsupported format_version ${describe(record.format_version)} (this aion supports format_version ${FORMAT_VERSION})`,
    );
  }
  const entryModule = checkLogicalNameField(record.entry_module, file, 'entry_module');
  const workflowType = checkLogicalNameField(record.workflow_type, file, 'workflow_type');
  if (workflowType !== entryModule) {
    throw fieldError(file, 'workflow_type', `must equal entry_module ${JSON.stringify(entryModule)}, got ${JSON.stringify(workflowType)}`);
  }
  const entryFunction = checkIdentifierField(record.entry_function, file, 'entry_function');
  const timeout = checkTimeoutField(record.timeout_seconds, file);
  const activities = checkActivitiesField(record.activities, file);
  if (typeof record.version !== 'string' || !VERSION_HEX.test(record.version)) {
    throw fieldError(file, 'version', `must be 64 lowercase hex characters, got ${describe(record.version)}`);
  }
  if (!Array.isArray(record.modules)) throw fieldError(file, 'modules', `must be an array of {name, bytes}, got ${describe(record.modules)}`);
  const modules: ManifestModule[] = [];
  const encoder = new TextEncoder();
  let previous: Uint8Array | undefined;
  record.modules.forEach((item, i) => {
    const field = `modules[${i}]`;
    const entry = checkObjectKeys(item, file, ['name', 'bytes'], [], `field '${field}'`);
    const name = checkLogicalNameField(entry.name, file, `${field}.name`);
    if (typeof entry.bytes !== 'number' || !Number.isSafeInteger(entry.bytes) || entry.bytes < 0) {
      throw fieldError(file, `${field}.bytes`, `must be an integer ≥ 0, got ${describe(entry.bytes)}`);
    }
    const utf8 = encoder.encode(name);
    if (previous !== undefined) {
      const order = Buffer.compare(previous, utf8);
      if (order === 0) throw fieldError(file, `${field}.name`, `duplicates module ${JSON.stringify(name)}`);
      if (order > 0) throw fieldError(file, `${field}.name`, `${JSON.stringify(name)} is out of order (modules are listed in ascending byte order of name)`);
    }
    previous = utf8;
    modules.push({ name, bytes: entry.bytes });
  });
  return {
    format_version: FORMAT_VERSION,
    workflow_type: workflowType,
    entry_module: entryModule,
    entry_function: entryFunction,
    timeout_seconds: timeout,
    activities,
    version: record.version,
    modules,
    ...(record.label === undefined ? {} : { label: checkLabelField(record.label, file) }),
    ...checkExtraFields(record, file, workflowType),
  };
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates manifest.json bytes; `maxBytes` bounds what is parsed at all. */
export function parseManifest(bytes: Uint8Array, maxBytes: number, file = 'manifest.json'): Manifest {
  if (bytes.length > maxBytes) {
    throw new AionError('invalid_package', `${file}: ${bytes.length} bytes exceeds the manifest limit of ${maxBytes} bytes`);
  }
  let text: string;
  try {
    text = strictDecoder.decode(bytes);
  } catch {
    throw new AionError('invalid_package', `${file}: not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AionError('invalid_package', `${file}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return validateManifest(value, file);
}

/** The manifest as written into archives: fixed key order, two-space indent, final newline. */
export function serializeManifest(manifest: Manifest): string {
  const ordered: Record<string, unknown> = {};
  for (const key of MANIFEST_KEYS) ordered[key] = manifest[key];
  ordered.modules = manifest.modules.map((m) => ({ name: m.name, bytes: m.bytes }));
  if (manifest.label !== undefined) ordered.label = manifest.label;
  if (manifest.input_schema !== undefined) ordered.input_schema = manifest.input_schema;
  if (manifest.output_schema !== undefined) ordered.output_schema = manifest.output_schema;
  if (manifest.additional_workflows !== undefined) {
    ordered.additional_workflows = manifest.additional_workflows.map((w) => {
      const entry: Record<string, unknown> = {};
      for (const key of ADDITIONAL_KEYS) if (w[key] !== undefined) entry[key] = w[key];
      return entry;
    });
  }
  return JSON.stringify(ordered, null, 2) + '\n';
}

/** Canonical JSON: object keys sorted (by UTF-16 code unit) at every depth, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v)).join(',') + ']';
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(record[k])).join(',') + '}';
  }
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`canonicalJson: ${typeof value} is not JSON`);
  return text;
}
