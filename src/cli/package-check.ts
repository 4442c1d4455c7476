// The checks `load` makes of an archive's content, for `pack` and `inspect`, which have no
// engine: every type's entry verified in a workflow thread (runtime/check.ts) and, for a
// package with schemas, every schema compiled (ajv, imported only then). Imported by those
// commands' actions only, never at start-up. Throws `invalid_package` as load would.
import { checkPackageCode } from '../runtime/check.js';
import { checkSchemas, hasSchemas, workflowSpecs, type AionPackage } from '../package/index.js';

export async function checkArchive(pkg: AionPackage): Promise<void> {
  await checkPackageCode(pkg.version, pkg.modules, workflowSpecs(pkg.manifest));
  if (hasSchemas(pkg.manifest)) await checkSchemas(pkg.manifest);
}
