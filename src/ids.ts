// The workflow id rule, defined once: `--id`, the protocol's workflow_id and ctx.child's
// options.workflowId (checked inside the sandbox, which takes the pattern as text) all use it.
// Ids are printable ASCII without spaces, so no id can contain the store's key separator.

export const WORKFLOW_ID_PATTERN = '^[\\x21-\\x7e]{1,200}$';
export const WORKFLOW_ID = new RegExp(WORKFLOW_ID_PATTERN);
