// Concurrent operators: eight `aion` processes at once (like make -j8) load, route and unload
// different and the same workflow types on one state directory, each waiting for the lock with
// the default 30 s timeout — embedded, and again with `aion serve` holding the directory (the
// commands then go over its control socket). Afterwards: no command failed state_busy; the
// deploy history holds every successful operation exactly once and nothing else; replaying it
// in order on a model of the catalog reproduces every command's reported outcome, explains
// every refusal, and ends in exactly the state on disk — the final state equals a serial order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import type { DeployRecord } from '../../src/engine/types.js';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { startServe } from '../server/support.js';
import { FULL, checkInvariants, dumpState, newStats, report, rng, runAion, tempDir, type RunResult } from './support.js';

const stats = newStats('concurrent');
const root = tempDir('aion-concurrent-');
const P: Packed[] = [];

type Op = { kind: 'load' | 'route' | 'unload'; type: string; version: string; archive?: string };

interface Model {
  loaded: Set<string>;
  routes: Map<string, string>;
}

const keyOf = (type: string, version: string) => `${type}/${version}`;

/** Applies an operation to the model: the exit code it must have, and the previous route. */
function apply(model: Model, op: Op): { code: number; previous: string | null } {
  const previous = model.routes.get(op.type) ?? null;
  const loaded = model.loaded.has(keyOf(op.type, op.version));
  if (op.kind === 'load') {
    model.loaded.add(keyOf(op.type, op.version));
    model.routes.set(op.type, op.version);
    return { code: 0, previous };
  }
  if (!loaded) return { code: 3, previous };
  if (op.kind === 'route') {
    model.routes.set(op.type, op.version);
    return { code: 0, previous };
  }
  if (previous === op.version) return { code: 5, previous };
  model.loaded.delete(keyOf(op.type, op.version));
  return { code: 0, previous };
}

function clone(m: Model): Model {
  return { loaded: new Set(m.loaded), routes: new Map(m.routes) };
}

async function actualModel(stateDir: string, served = false): Promise<Model> {
  if (served) {
    // The server holds the directory: ask it (`aion versions --json` goes over its socket).
    const r = await runAion(['--state-dir', stateDir, '--json', 'versions']);
    const model: Model = { loaded: new Set(), routes: new Map() };
    for (const v of (r.json as { versions: { workflow_type: string; version: string; route_active: boolean }[] }).versions) {
      model.loaded.add(keyOf(v.workflow_type, v.version));
      if (v.route_active) model.routes.set(v.workflow_type, v.version);
    }
    return model;
  }
  const dump = await dumpState(stateDir);
  const model: Model = { loaded: new Set(), routes: new Map() };
  for (const [k, v] of dump) {
    const [space, a, b] = k.split('\x00');
    if (space === 'pkg') model.loaded.add(keyOf(a!, b!));
    if (space === 'route') model.routes.set(a!, new TextDecoder().decode(v));
  }
  return model;
}

function same(a: Model, b: Model): boolean {
  return JSON.stringify([[...a.loaded].sort(), [...a.routes].sort()]) === JSON.stringify([[...b.loaded].sort(), [...b.routes].sort()]);
}

async function history(stateDir: string): Promise<DeployRecord[]> {
  if (!existsSync(stateDir)) return [];
  const engine = await Engine.open({ stateDir, create: false, lockTimeoutMs: 30_000 });
  try {
    return await engine.deployHistory();
  } finally {
    await engine.close();
  }
}

function argsOf(op: Op): string[] {
  if (op.kind === 'load') return ['load', op.archive!];
  return [op.kind, op.type, op.version];
}

/** One round: eight commands at once, then every check. */
async function round(stateDir: string, ops: Op[], label: string, served: boolean): Promise<void> {
  const fail = (m: string) => stats.failures.push(`${label}: ${m}`);
  const before = await actualModel(stateDir, served);
  const seen = served ? [] : await history(stateDir);
  const results: RunResult[] = await Promise.all(ops.map((op) => runAion(['--state-dir', stateDir, '--json', ...argsOf(op)])));
  stats.operations += ops.length;
  const records = (served ? await historyWhileServed(stateDir) : await history(stateDir)).slice(served ? baseline : seen.length);
  const allowed = new Set([0, 3, 4, 5]);
  results.forEach((r, i) => {
    if (r.code === 8) fail(`${argsOf(ops[i]!).join(' ')} failed state_busy`);
    else if (!allowed.has(r.code)) fail(`${argsOf(ops[i]!).join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  });
  // Exactly once: successful commands and new deploy records are the same multiset (and, when
  // embedded, each record carries the pid of the process that reported its success).
  const ok = results.map((r, i) => ({ r, op: ops[i]! })).filter((x) => x.r.code === 0);
  const sig = (kind: string, type: string, version: string) => `${kind} ${type} ${version}`;
  const want = ok.map((x) => sig(x.op.kind, x.op.type, x.op.version)).sort();
  const got = records.map((r) => sig(r.operation, r.workflow_type, r.version)).sort();
  if (JSON.stringify(want) !== JSON.stringify(got)) fail(`successful operations ${JSON.stringify(want)} but deploy records ${JSON.stringify(got)}`);
  if (!served) {
    for (const x of ok) {
      const n = records.filter((r) => r.pid === x.r.pid && sig(r.operation, r.workflow_type, r.version) === sig(x.op.kind, x.op.type, x.op.version)).length;
      if (n !== 1) fail(`${argsOf(x.op).join(' ')} (pid ${x.r.pid}) has ${n} deploy records`);
    }
  }
  // A serial order: the records, replayed in order, must each be legal and reproduce what
  // each command reported; the model must end equal to the state on disk.
  const model = clone(before);
  const states: Model[] = [clone(model)];
  for (const rec of records) {
    const op: Op = { kind: rec.operation as Op['kind'], type: rec.workflow_type, version: rec.version };
    const outcome = apply(model, op);
    if (outcome.code !== 0) fail(`deploy record ${sig(rec.operation, rec.workflow_type, rec.version.slice(0, 8))} is illegal at its place in the order (would exit ${outcome.code})`);
    if (outcome.previous !== rec.previous && rec.operation !== 'unload') fail(`deploy record ${sig(rec.operation, rec.workflow_type, rec.version.slice(0, 8))} says previous ${rec.previous}, the order gives ${outcome.previous}`);
    states.push(clone(model));
  }
  const after = await actualModel(stateDir, served);
  if (!same(model, after)) fail(`the state on disk is not the serial replay of the deploy history`);
  for (const x of ok) {
    const json = x.r.json as { previous?: string | null };
    if (x.op.kind === 'unload' || json?.previous === undefined) continue;
    const rec = records.find((r) => (served || r.pid === x.r.pid) && sig(r.operation, r.workflow_type, r.version) === sig(x.op.kind, x.op.type, x.op.version) && r.previous === json.previous);
    if (!rec) fail(`${argsOf(x.op).join(' ')} reported previous ${json.previous}, which no deploy record says`);
  }
  // Every refusal is explained by some point of the order.
  results.forEach((r, i) => {
    if (r.code === 0 || !allowed.has(r.code)) return;
    const op = ops[i]!;
    if (!states.some((s) => apply(clone(s), op).code === r.code)) fail(`${argsOf(op).join(' ')} exited ${r.code}, which no point of the serial order explains`);
  });
  if (!served) for (const p of checkInvariants(await dumpState(stateDir))) fail(p);
  if (served) baseline += records.length;
}

let baseline = 0;
let serveHistory: (() => Promise<DeployRecord[]>) | undefined;
async function historyWhileServed(stateDir: string): Promise<DeployRecord[]> {
  return serveHistory ? serveHistory() : history(stateDir);
}

function opsFor(rand: () => number): Op[] {
  const [h1, h2, h3, order, approval, counter] = P as [Packed, Packed, Packed, Packed, Packed, Packed];
  const pool: Op[] = [
    { kind: 'load', type: 'hello', version: h1.version, archive: h1.path },
    { kind: 'load', type: 'hello', version: h2.version, archive: h2.path },
    { kind: 'load', type: 'hello', version: h3.version, archive: h3.path },
    { kind: 'load', type: 'order', version: order.version, archive: order.path },
    { kind: 'load', type: 'approval', version: approval.version, archive: approval.path },
    { kind: 'load', type: 'counter', version: counter.version, archive: counter.path },
    { kind: 'route', type: 'hello', version: h1.version },
    { kind: 'route', type: 'hello', version: h2.version },
    { kind: 'route', type: 'hello', version: h3.version },
    { kind: 'unload', type: 'hello', version: h1.version },
    { kind: 'unload', type: 'hello', version: h2.version },
    { kind: 'unload', type: 'hello', version: h3.version },
    { kind: 'unload', type: 'order', version: order.version },
  ];
  // Always the same archive twice in a round, plus six random others.
  const ops: Op[] = [pool[0]!, pool[0]!];
  while (ops.length < 8) ops.push(pool[Math.floor(rand() * pool.length)]!);
  return ops;
}

test('concurrent operators: packages', async () => {
  P.push(await packFixture('hello_v1', root, 'h1.aion'));
  P.push(await packFixture('hello_v2', root, 'h2.aion'));
  P.push(await packVariant('hello_v1', root, 'h3'));
  P.push(await packFixture('order', root));
  P.push(await packFixture('approval', root));
  P.push(await packFixture('counter', root));
});

test('concurrent operators: eight embedded processes at once, rounds of load/route/unload', { timeout: 900_000 }, async () => {
  const stateDir = path.join(root, 'embedded');
  const rand = rng(8);
  const rounds = FULL ? 12 : 3;
  for (let i = 0; i < rounds; i++) await round(stateDir, opsFor(rand), `embedded round ${i + 1}`, false);
  stats.extra['embedded rounds'] = rounds;
  assert.deepEqual(stats.failures, []);
});

test('concurrent operators: eight processes at once against aion serve', { timeout: 900_000 }, async () => {
  const stateDir = path.join(root, 'served');
  // Seed the directory and the baseline of its history before the server holds it.
  await runAion(['--state-dir', stateDir, 'load', P[0]!.path]);
  baseline = (await history(stateDir)).length;
  const server = await startServe(stateDir);
  const rand = rng(88);
  const rounds = FULL ? 6 : 2;
  try {
    // While serving, the history is read through the server (`aion history --json`).
    serveHistory = async () => {
      const r = await runAion(['--state-dir', stateDir, '--json', 'history']);
      const list = (r.json as { history?: DeployRecord[]; records?: DeployRecord[] }) ?? {};
      return list.history ?? list.records ?? (Array.isArray(r.json) ? (r.json as DeployRecord[]) : []);
    };
    for (let i = 0; i < rounds; i++) await round(stateDir, opsFor(rand), `served round ${i + 1}`, true);
  } finally {
    serveHistory = undefined;
    await server.stop();
  }
  for (const p of checkInvariants(await dumpState(stateDir))) stats.failures.push(`served: ${p}`);
  stats.extra['served rounds'] = rounds;
  assert.deepEqual(stats.failures, []);
});

test('concurrent operators: summary', () => {
  report(stats);
  rmSync(root, { recursive: true, force: true });
});
