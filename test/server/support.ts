// Fixtures for the control-socket tests: archives packed with bin/aion, a live `aion serve` in
// a child process (ready once it prints `listening on <path>`), and a raw socket client.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { aion, BIN, FIXTURES, ROOT } from '../helpers/cli.js';

export interface Packed {
  path: string;
  version: string;
  type: string;
}

/** `bin/aion pack fixtures/<name> --out <dir>/<out>`. */
export function pack(name: string, dir: string, out = `${name}.aion`): Packed {
  return packDir(path.join(FIXTURES, name), path.join(dir, out));
}

/** A copy of `fixtures/<name>` whose entry module differs by one comment: a new version. */
export function packVariant(name: string, dir: string, tag: string): Packed {
  const project = path.join(dir, tag);
  cpSync(path.join(FIXTURES, name), project, { recursive: true });
  const config = JSON.parse(readFileSync(path.join(project, 'workflow.json'), 'utf8')) as { entry_module: string };
  appendFileSync(path.join(project, 'modules', `${config.entry_module}.js`), `\n// variant ${tag}\n`);
  return packDir(project, path.join(dir, `${tag}.aion`));
}

function packDir(project: string, out: string): Packed {
  const r = aion(['pack', project, '--out', out, '--json']);
  if (r.code !== 0) throw new Error(`pack ${project} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return { path: r.json.output, version: r.json.version, type: r.json.workflow_type };
}

export interface Served {
  child: ChildProcess;
  pid: number;
  socket: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `aion serve` on a state directory and waits until it listens. */
export function startServe(stateDir: string, args: string[] = [], timeoutMs = 20_000): Promise<Served> {
  const env = { ...process.env };
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [BIN, '--state-dir', stateDir, 'serve', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`aion serve did not get ready within ${timeoutMs}ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /^listening on (.+)$/m.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          pid: child.pid!,
          socket: m[1]!,
          stdout: () => stdout,
          stderr: () => stderr,
          exited,
          stop: (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`aion serve exited (${code ?? signal}) before it was ready; stderr: ${stderr}`));
    });
  });
}

/** A raw protocol client: writes bytes, collects reply lines, notices the close. */
export class RawClient {
  readonly socket: net.Socket;
  private buffer = '';
  readonly lines: any[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(JSON.parse(this.buffer.slice(0, nl)));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: socketPath }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private notify() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** Waits until `n` reply lines have arrived (or the connection closed, or timeout). */
  async waitLines(n: number, timeoutMs = 10_000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.lines;
  }

  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  /** Sends one request line and waits for the reply with its id. */
  async request(method: string, params: unknown = {}, id: number | string = Math.floor(Math.random() * 1e9)): Promise<any> {
    await this.write(JSON.stringify({ v: 1, id, method, params }) + '\n');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.lines.find((l) => l.id === id);
      if (found) return found;
      if (this.closed || Date.now() > deadline) throw new Error(`no reply to ${method} (closed: ${this.closed})`);
      await this.waitLines(this.lines.length + 1, 1000);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Whether a process is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
