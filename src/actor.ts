// Who an operator is, as the deploy history records it (`user`): $AION_ACTOR when set and
// non-empty (CI jobs, deploy bots), else the OS account running this process.
import os from 'node:os';

export function currentActor(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AION_ACTOR) return env.AION_ACTOR;
  try {
    return os.userInfo().username;
  } catch {
    return env.USER || String(process.getuid?.() ?? 'unknown');
  }
}
