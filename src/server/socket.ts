// Where the control socket of a state directory lives, and getting that place ready: an
// owner-only directory, and no stale socket file left behind by a server that was killed.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, realpathSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDirs } from '../dirs.js';
import { AionError } from '../errors.js';
import { connectSocket } from '../client/remote.js';
import { MAX_SOCKET_PATH_BYTES } from '../client/protocol.js';

export interface SocketPlace {
  /** The socket file. */
  path: string;
  /** Its directory, kept at mode 0700. */
  dir: string;
  /** True when the state directory is too deep and the socket lives under the temp directory. */
  short: boolean;
}

const fits = (p: string) => Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES;

/**
 * `<state-dir>/run/control.sock` when that path fits in a Unix socket address; otherwise
 * `<tmpdir>/aion-<uid>/<16 hex of sha256(real state dir)>.sock` (falling back to /tmp when even
 * the temp directory is too deep). Clients never compute this: they read it from holder.json.
 */
export function socketPlace(stateDir: string): SocketPlace {
  const dir = path.join(stateDir, 'run');
  const inside = path.join(dir, 'control.sock');
  if (fits(inside)) return { path: inside, dir, short: false };
  let real = path.resolve(stateDir);
  try {
    real = realpathSync(real);
  } catch {
    // Not created yet: the resolved path names it as well.
  }
  const name = `${createHash('sha256').update(real).digest('hex').slice(0, 16)}.sock`;
  const user = `aion-${process.getuid?.() ?? os.userInfo().username}`;
  for (const base of [os.tmpdir(), '/tmp']) {
    const candidate = path.join(base, user, name);
    if (fits(candidate)) return { path: candidate, dir: path.dirname(candidate), short: true };
  }
  throw new AionError('store', `no control socket path short enough for state directory ${stateDir}`, {
    hint: 'set TMPDIR to a short directory',
  });
}

/** Creates the socket's directory owner-only, refusing one that is not ours or not a directory. */
export function prepareSocketDir(dir: string): void {
  try {
    makeDirs(dir, 0o700);
  } catch (error) {
    throw new AionError('store', `cannot create the control socket directory ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) {
    throw new AionError('store', `the control socket directory ${dir} is not a directory (a symlink or a file is there); refusing to use it`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AionError('store', `the control socket directory ${dir} is owned by uid ${st.uid}, not by you (uid ${uid}); refusing to use it`, {
      hint: 'remove it, or set TMPDIR to a directory of your own',
    });
  }
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/**
 * Removes a socket file nobody listens on (left by a killed server). Fails `state_busy` if a
 * server does answer there, and `store` if something that is not a socket is in the way.
 */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new AionError('store', `${socketPath} exists and is not a socket; refusing to replace it`, { hint: 'remove it by hand if it is not needed' });
  }
  try {
    (await connectSocket(socketPath, 1000)).destroy();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ECONNREFUSED') {
      try {
        unlinkSync(socketPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new AionError('store', `cannot remove the stale control socket ${socketPath}: ${(e as Error).message}`, { cause: e });
        }
      }
      return;
    }
    throw new AionError('store', `cannot tell whether ${socketPath} is in use: ${(error as Error).message}`, { cause: error });
  }
  throw new AionError('state_busy', `another aion serve already listens on ${socketPath}`, { details: { socket: socketPath } });
}
