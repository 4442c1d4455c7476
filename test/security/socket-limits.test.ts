// Attack 8: hostile clients of the control socket. A client that pipelines requests and never
// reads the replies, or holds hundreds of half-sent lines, must not grow `aion serve` without
// bound; connections are capped; idle connections and unfinished request lines time out; and
// SIGTERM stops the server within its grace period even while a request is still running.
// Memory is the server's peak RSS (VmHWM in /proc/<pid>/status), bounded generously.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { aion, aionAsync, loadedState, tempDir, workflowProject } from './support.js';
import { RawClient, startServe, type Served } from '../server/support.js';
import { MAX_REQUEST_BYTES } from '../../src/client/protocol.js';

const MB = 1024 * 1024;
const RSS_BOUND = 300 * MB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Peak resident memory of a process, in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'no VmHWM');
  return Number(m[1]) * 1024;
}

/** `aion serve` with some limits lowered through their environment variables. */
async function serveWith(stateDir: string, env: Record<string, string>): Promise<Served> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await startServe(stateDir);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A raw connection that reads nothing (its replies pile up on the server's side). */
function deafConnection(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: socketPath }, () => resolve(s));
    s.pause();
    s.on('error', () => {});
    s.once('error', reject);
  });
}

async function stillServes(server: Served): Promise<void> {
  const c = await RawClient.connect(server.socket);
  try {
    const hi = await c.request('hello', {}, 'alive');
    assert.equal(hi.result.pid, server.pid);
  } finally {
    c.close();
  }
}

test('200,000 pipelined requests whose replies are never read keep the server bounded', { timeout: 180_000 }, async () => {
  const s = loadedState();
  const server = await startServe(s.stateDir);
  try {
    const baseline = peakRss(server.pid);
    const deaf = await deafConnection(server.socket);
    const line = (i: number) => `{"v":1,"id":${i},"method":"versions","params":{}}\n`;
    const batch = 2000;
    for (let i = 0; i < 200_000; i += batch) {
      deaf.write(Array.from({ length: batch }, (_, j) => line(i + j)).join(''));
    }
    // Until the server has taken every byte (it reads without limit) or stopped reading for
    // a while (it applies backpressure): either way, then its peak memory tells.
    const deadline = Date.now() + 60_000;
    let stalled = 0;
    let last = deaf.writableLength;
    while (deaf.writableLength > 0 && Date.now() < deadline && stalled < 10) {
      await sleep(300);
      stalled = deaf.writableLength === last ? stalled + 1 : 0;
      last = deaf.writableLength;
    }
    await sleep(1000);
    const peak = peakRss(server.pid);
    console.log(`serve peak RSS: ${(baseline / MB).toFixed(0)} MB before, ${(peak / MB).toFixed(0)} MB after 200k unread requests (${(deaf.writableLength / MB).toFixed(1)} MB not taken)`);
    assert.ok(peak < RSS_BOUND, `peak RSS ${(peak / MB).toFixed(0)} MB`);
    assert.ok(deaf.writableLength > 0, 'the server read every request although no reply was taken');
    // Others are still served meanwhile, and the flood ends with its connection.
    await stillServes(server);
    deaf.destroy();
    await stillServes(server);
  } finally {
    const exit = await server.stop();
    assert.equal(exit.code, 0, server.stderr());
    s.cleanup();
  }
});

test('800 half-sent 1 MiB lines: the cap refuses most, the line timeout closes the rest, memory stays bounded', { timeout: 180_000 }, async () => {
  const s = loadedState();
  const server = await serveWith(s.stateDir, { AION_SERVE_LINE_TIMEOUT_MS: '4000' });
  const sockets: { socket: net.Socket; data: string; closed: boolean }[] = [];
  try {
    const partial = Buffer.alloc(MAX_REQUEST_BYTES - 64, 'x');
    partial.write('{"v":1,"id":1,"method":"hello","params":{"pad":"');
    for (let i = 0; i < 800; i++) {
      const entry = { socket: net.createConnection({ path: server.socket }), data: '', closed: false };
      entry.socket.on('error', () => {});
      entry.socket.setEncoding('utf8').on('data', (d: string) => (entry.data += d));
      entry.socket.on('close', () => (entry.closed = true));
      entry.socket.write(partial);
      sockets.push(entry);
      if (i % 50 === 49) await sleep(50);
    }
    await sleep(2000);
    const peak = peakRss(server.pid);
    const refused = sockets.filter((e) => /"code":"state_busy"/.test(e.data));
    console.log(`serve peak RSS with 800 half-sent lines: ${(peak / MB).toFixed(0)} MB; ${refused.length} connections refused at the cap`);
    assert.ok(peak < RSS_BOUND, `peak RSS ${(peak / MB).toFixed(0)} MB`);
    assert.ok(refused.length >= 800 - 64, `only ${refused.length} connections were refused`);
    assert.match(refused[0]!.data, /at most 64 connections/);
    // The accepted ones never finish their line: each gets a usage error and is closed.
    const deadline = Date.now() + 30_000;
    while (sockets.some((e) => !e.closed) && Date.now() < deadline) await sleep(200);
    assert.ok(sockets.every((e) => e.closed), `${sockets.filter((e) => !e.closed).length} connections still open`);
    const timedOut = sockets.filter((e) => /request line not completed within 4s/.test(e.data));
    assert.equal(timedOut.length + refused.length, 800);
    await stillServes(server);
  } finally {
    for (const e of sockets) e.socket.destroy();
    const exit = await server.stop();
    assert.equal(exit.code, 0, server.stderr());
    s.cleanup();
  }
});

test('the connection cap: connection 65 gets state_busy, a command then exits 8; one closes and commands work again', { timeout: 120_000 }, async () => {
  const s = loadedState();
  const server = await startServe(s.stateDir);
  const held: RawClient[] = [];
  try {
    for (let i = 0; i < 64; i++) held.push(await RawClient.connect(server.socket));
    await held[63]!.request('hello', {}, 'last-in');
    const extra = await RawClient.connect(server.socket);
    await extra.waitLines(1);
    assert.equal(extra.lines[0]?.error?.code, 'state_busy');
    assert.equal(extra.lines[0]?.id, null);
    assert.ok(await extra.waitClosed(), 'the refused connection was left open');
    const busy = await aionAsync(['--state-dir', s.stateDir, '--json', 'versions']);
    assert.equal(busy.code, 8, busy.stdout + busy.stderr);
    assert.equal(busy.json.error.code, 'state_busy');
    assert.match(busy.json.error.message, /at most 64 connections/);
    held.pop()!.close();
    await sleep(200);
    const ok = await aionAsync(['--state-dir', s.stateDir, '--json', 'versions']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  } finally {
    for (const c of held) c.close();
    const exit = await server.stop();
    assert.equal(exit.code, 0, server.stderr());
    s.cleanup();
  }
});

test('idle connections and unfinished request lines are closed; a long request is not idle', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-security-socket-');
  try {
    const stateDir = path.join(dir, 'state');
    const proj = workflowProject(dir, 'slow', 'exports.activities = { wait: (ms) => new Promise((r) => setTimeout(() => r(ms), ms)) };\nexports.run = async (ctx, ms) => ctx.activity("wait", ms);\n', ['wait']);
    assert.equal(aion(['pack', proj, '--out', path.join(dir, 'slow.aion')]).code, 0);
    assert.equal(aion(['--state-dir', stateDir, 'load', path.join(dir, 'slow.aion')]).code, 0);
    const server = await serveWith(stateDir, { AION_SERVE_IDLE_TIMEOUT_MS: '1500', AION_SERVE_LINE_TIMEOUT_MS: '1500' });
    try {
      const idle = await RawClient.connect(server.socket);
      const half = await RawClient.connect(server.socket);
      await half.write('{"v":1,"id":1,"method":"hel');
      const busy = await RawClient.connect(server.socket);
      // Takes 4 s, more than twice the idle timeout: the connection must stay open for it.
      const reply = busy.request('start', { workflow_type: 'slow', input: 4000 }, 'slow');
      assert.ok(await idle.waitClosed(15_000), 'an idle connection stayed open');
      assert.deepEqual(idle.lines, [], 'an idle close is silent');
      assert.ok(await half.waitClosed(15_000), 'a half-sent line kept its connection open');
      assert.equal(half.lines[0]?.error?.code, 'usage');
      assert.match(half.lines[0]?.error?.message, /request line not completed within 1\.5s/);
      const started = await reply;
      assert.equal(started.result?.status, 'completed', JSON.stringify(started));
      assert.ok(await busy.waitClosed(15_000), 'the connection did not go idle after its request');
    } finally {
      const exit = await server.stop();
      assert.equal(exit.code, 0, server.stderr());
    }
  } finally {
    cleanup();
  }
});

test('SIGTERM while a request runs for minutes: serve exits 0 within its grace period, state intact', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir('aion-security-socket-');
  try {
    const stateDir = path.join(dir, 'state');
    const proj = workflowProject(dir, 'slow', 'exports.activities = { wait: (ms) => new Promise((r) => setTimeout(() => r(ms), ms)) };\nexports.run = async (ctx, ms) => ctx.activity("wait", ms);\n', ['wait']);
    assert.equal(aion(['pack', proj, '--out', path.join(dir, 'slow.aion')]).code, 0);
    assert.equal(aion(['--state-dir', stateDir, 'load', path.join(dir, 'slow.aion')]).code, 0);
    const server = await serveWith(stateDir, { AION_SERVE_SHUTDOWN_GRACE_MS: '2000' });
    // Ten minutes of activity, carried out by the server for this command.
    const start = aionAsync(['--state-dir', stateDir, '--json', 'start', 'slow', '--id', 'long-1', '--input', '600000']);
    const seen = Date.now() + 20_000;
    for (;;) {
      const runs = await aionAsync(['--state-dir', stateDir, '--json', 'runs']);
      if (runs.json?.runs?.length === 1) break;
      assert.ok(Date.now() < seen, 'the run never started');
      await sleep(200);
    }
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const exit = await Promise.race([server.exited, sleep(30_000).then(() => 'hung' as const)]);
    const took = Date.now() - t0;
    if (exit === 'hung') server.child.kill('SIGKILL');
    assert.notEqual(exit, 'hung', `serve did not exit within 30 s of SIGTERM; stderr: ${server.stderr()}`);
    assert.equal((exit as { code: number }).code, 0, server.stderr());
    assert.ok(took < 15_000, `serve took ${took} ms to stop with a 2 s grace period`);
    assert.match(server.stderr(), /warning: .*1 request\(s\) still in flight after 2s/);
    const client = await start;
    assert.notEqual(client.code, 0, 'the abandoned command reported success');
    // What was abandoned is a crash's worth: recoverable, and the directory checks clean.
    const doctor = aion(['--state-dir', stateDir, '--json', 'doctor']);
    assert.equal(doctor.code, 0, doctor.stdout);
    const show = aion(['--state-dir', stateDir, '--json', 'show', 'long-1']);
    assert.equal(show.json.status, 'running');
  } finally {
    cleanup();
  }
});

test('the line splitter: a line sent a byte at a time, UTF-8 split across chunks, the size bound exact', async () => {
  const { LineSplitter } = await import('../../src/client/protocol.js');
  const text = '{"v":1,"id":"é€𝄞","method":"hello"}';
  const bytes = Buffer.from(text + '\n' + text + '\n');
  const bytewise = new LineSplitter(1024);
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i++) lines.push(...bytewise.push(bytes.subarray(i, i + 1)).lines);
  assert.deepEqual(lines, [text, text]);
  assert.equal(bytewise.hasPartial, false);
  const exact = new LineSplitter(10);
  assert.deepEqual(exact.push(Buffer.from('0123456789')).overflow, false);
  assert.deepEqual(exact.push(Buffer.from('\n')).lines, ['0123456789']);
  assert.equal(exact.push(Buffer.from('01234567890')).overflow, true, 'one byte past the bound');
  assert.equal(exact.push(Buffer.from('\n')).overflow, true, 'stays overflowed');
});
