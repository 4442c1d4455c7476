// The shapes of the .aion package format. See README "Package format" and the CLI contract.

/** The only manifest format this build reads and writes. */
export const FORMAT_VERSION = 1;

/** `manifest.json` inside an archive. Keys are exactly these; unknown keys are refused. */
export interface Manifest {
  format_version: number;
  /** Equal to entry_module: a workflow's type is the logical name of its entry module. */
  workflow_type: string;
  entry_module: string;
  entry_function: string;
  timeout_seconds: number;
  activities: string[];
  /** The content hash of the modules (64 lowercase hex). Must equal the computed one. */
  version: string;
  /** Every module, ascending byte order of name, with its exact byte length. */
  modules: ManifestModule[];
  /** The author's label (≤ 64 printable characters); not part of the version. Absent: none. */
  label?: string;
  /** JSON Schema (draft 2020-12) a start's input must match. Absent: any input. */
  input_schema?: JsonSchema;
  /** JSON Schema (draft 2020-12) a completed run's output must match. Absent: any output. */
  output_schema?: JsonSchema;
  /** More workflow types the same archive exports (same version). Absent: only workflow_type. */
  additional_workflows?: AdditionalWorkflow[];
}

/** A JSON Schema: an object, or `true`/`false`. */
export type JsonSchema = boolean | Record<string, unknown>;

/** One more workflow type of an archive, as written in workflow.json and manifest.json. */
export interface AdditionalWorkflow {
  workflow_type: string;
  entry_module: string;
  entry_function: string;
  /** Absent: none. */
  activities?: string[];
  /** Absent: the package's timeout_seconds. */
  timeout_seconds?: number;
  /** Started only as a child by the package's own workflows; never routed. Absent: false. */
  internal?: boolean;
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
}

/** One workflow type an archive exports, defaults applied (see workflowSpecs, the one rule). */
export interface WorkflowSpec {
  workflow_type: string;
  entry_module: string;
  entry_function: string;
  activities: string[];
  timeout_seconds: number;
  internal: boolean;
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
}

export interface ManifestModule {
  name: string;
  bytes: number;
}

/** A validated package, fully in memory. */
export interface AionPackage {
  manifest: Manifest;
  /** Content hash (== manifest.version). */
  version: string;
  /** SHA-256 hex of the canonical manifest JSON. */
  manifestDigest: string;
  /** Module source bytes by logical name, in ascending byte order of name. */
  modules: Map<string, Uint8Array>;
  /** Files shipped under src/, by path relative to src/ (never part of the version). */
  sources: Map<string, Uint8Array>;
  /** Size of the archive it was read from. */
  archiveBytes: number;
}

/** Bounds a reader enforces before and while inflating; each breach is `invalid_package`. */
export interface PackageLimits {
  maxArchiveBytes: number;
  maxInflatedBytes: number;
  maxEntries: number;
  maxEntryBytes: number;
  maxManifestBytes: number;
  /** Largest inflated/compressed ratio, applied to entries above `ratioFloorBytes`. */
  maxCompressionRatio: number;
  ratioFloorBytes: number;
}

export const DEFAULT_LIMITS: Readonly<PackageLimits> = {
  maxArchiveBytes: 256 * 1024 * 1024,
  maxInflatedBytes: 512 * 1024 * 1024,
  maxEntries: 10_000,
  maxEntryBytes: 64 * 1024 * 1024,
  maxManifestBytes: 1024 * 1024,
  maxCompressionRatio: 100,
  ratioFloorBytes: 64 * 1024,
};
