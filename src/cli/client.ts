// Opening the client from a command: wires waiting notices and warnings to stderr and always
// closes the client, on success and failure.
import type { Client } from '../client/client.js';
import { describeWait } from '../store/holder.js';
import type { CommandContext } from './context.js';

export async function withClient<T>(
  ctx: CommandContext,
  options: { write: boolean; command: string; drivesRuns?: boolean },
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const { openClient } = await import('../client/client.js');
  const client = await openClient({
    stateDir: ctx.globals.stateDir,
    store: ctx.globals.store,
    lockTimeoutMs: ctx.globals.lockTimeoutMs,
    write: options.write,
    drivesRuns: options.drivesRuns,
    command: `aion ${options.command}`,
    onWait: (holder, position) =>
      ctx.out.notice(describeWait(ctx.globals.stateDir, ctx.globals.lockTimeoutMs, holder, position)),
    onWarning: (message) => ctx.out.warn(message),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
