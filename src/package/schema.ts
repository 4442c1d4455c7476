// Input and output schemas (JSON Schema draft 2020-12) of a package's workflow types, checked
// with ajv. ajv is loaded on first use, and only here (a require: ajv is CommonJS, and the
// start-up bundle keeps it outside itself, where an import() would not resolve): the paths that validate (pack,
// inspect, load, a start or completion of a type with a schema) pay for it; `versions` and
// every other start-up path never do.
//
// Failure behaviour: a schema that is not a valid draft 2020-12 schema (or that refers to one
// it does not contain: nothing is ever fetched) is `invalid_package` naming the field; a value
// that does not match is returned as a list of {path, message}, never thrown.
import { createRequire } from 'node:module';
import { AionError } from '../errors.js';
import { workflowSpecs } from './manifest.js';
import type { JsonSchema, Manifest } from './types.js';

/** One mismatch: `path` is a JSON Pointer into the value ('' is the value itself). */
export interface SchemaError {
  path: string;
  message: string;
}

export type Validate = (value: unknown) => SchemaError[];

/** At most this many mismatches are reported for one value. */
const MAX_ERRORS = 20;

type AjvInstance = { compile(schema: JsonSchema): AjvValidate };
type AjvValidate = ((value: unknown) => boolean) & { errors?: { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }[] | null };

let ajvClass: Promise<new (options: Record<string, unknown>) => AjvInstance> | undefined;

function loadAjv(): Promise<new (options: Record<string, unknown>) => AjvInstance> {
  ajvClass ??= Promise.resolve().then(() => {
    const m = createRequire(import.meta.url)('ajv/dist/2020.js') as { default?: unknown };
    return (m.default ?? m) as new (options: Record<string, unknown>) => AjvInstance;
  });
  return ajvClass;
}

/**
 * Compiles one schema (a fresh ajv instance each: `$id`s of different packages never clash).
 * `strict: false` follows the specification (unknown keywords are annotations); the schema
 * itself is checked against the draft 2020-12 meta-schema. Throws `invalid_package`.
 */
export async function compileSchema(schema: JsonSchema, file: string, field: string): Promise<Validate> {
  const Ajv = await loadAjv();
  let validate: AjvValidate;
  try {
    validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);
  } catch (error) {
    throw new AionError('invalid_package', `${file}: field '${field}' is not a valid JSON Schema (draft 2020-12): ${(error as Error).message}`);
  }
  return (value) => {
    if (validate(value)) return [];
    return (validate.errors ?? []).slice(0, MAX_ERRORS).map((e) => ({
      path: e.instancePath,
      message: `${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${JSON.stringify(e.params.additionalProperty)})` : ''}`,
    }));
  };
}

/** The field of a type's schema in the manifest, for messages. */
function schemaField(manifest: Manifest, workflowType: string, kind: 'input' | 'output'): string {
  const i = (manifest.additional_workflows ?? []).findIndex((w) => w.workflow_type === workflowType);
  return i < 0 ? `${kind}_schema` : `additional_workflows[${i}].${kind}_schema`;
}

/** Compiles every schema of a package (pack, inspect, load): a bad one is `invalid_package`. */
export async function checkSchemas(manifest: Manifest, file = 'manifest.json'): Promise<void> {
  for (const spec of workflowSpecs(manifest)) {
    for (const kind of ['input', 'output'] as const) {
      const schema = spec[`${kind}_schema`];
      if (schema !== undefined) await compileSchema(schema, file, schemaField(manifest, spec.workflow_type, kind));
    }
  }
}

/**
 * The compiled schemas of loaded versions, each compiled once (on first use) per
 * (version, type, kind). `drop` forgets a version's (unload).
 */
export class SchemaCache {
  private readonly compiled = new Map<string, Promise<Validate>>();

  /** The validator of a type's input or output, or undefined when it has no such schema. */
  validator(version: string, manifest: Manifest, workflowType: string, kind: 'input' | 'output'): Promise<Validate> | undefined {
    const spec = workflowSpecs(manifest).find((s) => s.workflow_type === workflowType);
    const schema = spec?.[`${kind}_schema`];
    if (schema === undefined) return undefined;
    const key = `${version}\x00${workflowType}\x00${kind}`;
    let hit = this.compiled.get(key);
    if (!hit) {
      hit = compileSchema(schema, 'manifest.json', schemaField(manifest, workflowType, kind));
      hit.catch(() => this.compiled.delete(key));
      this.compiled.set(key, hit);
    }
    return hit;
  }

  drop(version: string): void {
    for (const key of this.compiled.keys()) if (key.startsWith(version + '\x00')) this.compiled.delete(key);
  }
}

/** The text of a list of mismatches, for messages: `/name: must be string; ...`. */
export function describeSchemaErrors(errors: readonly SchemaError[]): string {
  return errors.map((e) => `${e.path === '' ? '(the value)' : e.path}: ${e.message}`).join('; ');
}
