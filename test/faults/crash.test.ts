// Crash consistency: bin/aion is killed with SIGKILL at every named fault point an operation
// passes (load, route, unload, start, signal, terminate, serve's recovery), at every hit of
// each point, and at random times. After each kill a fresh process checks the state directory:
// deploy operations left it exactly as before or exactly as after; the invariants hold (routes,
// archives, pin index, active markers, timers); no history lost an event; and retrying the
// operation (then `aion serve --until-idle`) completes it with the result a faultless run has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import {
  FULL,
  checkInvariants,
  copyState,
  deployView,
  dumpState,
  lostEvents,
  newStats,
  orphanArchiveFiles,
  pool,
  report,
  rng,
  runAion,
  runDigest,
  runOf,
  tempDir,
  type Dump,
} from './support.js';
import { checkStateDir } from './doctor-oracle.js';

const stats = newStats('crash');
const WIDTH = Math.max(2, Math.min(4, availableParallelism()));
const root = tempDir('aion-crash-');
const A: Record<string, Packed> = {};

interface Scenario {
  name: string;
  kind: 'deploy' | 'run';
  /** Builds the state before the operation (in `dir`). */
  setup: (dir: string) => Promise<void>;
  op: () => string[];
  /** Exit codes a faultless run (and a retry) may end with. */
  codes: number[];
  /** Run scenarios: the workflow whose final record must match the faultless run's. */
  workflowId?: string;
  /** Run scenarios: re-issues the operation when the kill came before it was recorded. */
  reissue?: (dump: Dump) => string[] | undefined;
}

async function cli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}, okCodes = [0]): Promise<void> {
  const r = await runAion(['--state-dir', dir, '--json', ...args], { env });
  if (!okCodes.includes(r.code) && !(env.AION_FAULT_POINT && r.killed)) {
    throw new Error(`aion ${args.join(' ')} exited ${r.code} ${r.signal ?? ''}: ${r.stderr}${r.stdout}`);
  }
}

const load = (dir: string, name: string) => cli(dir, ['load', A[name]!.path]);

/** A setup built once (into a cache directory) and copied for every use. */
function cached(name: string, build: (dir: string) => Promise<void>): (dir: string) => Promise<void> {
  let built: Promise<string> | undefined;
  return async (dir) => {
    built ??= (async () => {
      const cache = path.join(root, `setup-${name}`);
      await build(cache);
      return cache;
    })();
    copyState(await built, dir);
  };
}

function scenarios(): Scenario[] {
  const base = cached('base', async (dir) => {
    for (const n of ['hello_v1', 'approval', 'parent', 'order', 'counter', 'sleeper']) await load(dir, n);
  });
  const withV2 = cached('v2', async (dir) => {
    await base(dir);
    await load(dir, 'hello_v2');
  });
  const withFamily = cached('family', async (dir) => {
    await load(dir, 'family_v1');
  });
  const withFamilyV2 = cached('family-v2', async (dir) => {
    await withFamily(dir);
    await load(dir, 'family_v2');
  });
  const withRamp = cached('ramp', async (dir) => {
    await withV2(dir);
    await cli(dir, ['ramp', 'hello', A.hello_v1!.version, '30']);
  });
  const withWaiting = cached('waiting', async (dir) => {
    await base(dir);
    await cli(dir, ['start', 'approval', '--id', 'a1', '--input', '{"amount":5}']);
  });
  const hist = (dump: Dump, wid: string, type: string) => {
    const rec = runOf(dump, wid);
    if (!rec) return false;
    for (const [k, v] of dump) {
      if (k.startsWith(`hist\x00${rec.run_id}\x00`) && new TextDecoder().decode(v).includes(`"type":"${type}"`)) return true;
    }
    return false;
  };
  const startOp = (type: string, wid: string, input?: string): Pick<Scenario, 'op' | 'workflowId' | 'reissue'> => {
    const args = ['start', type, '--id', wid, ...(input ? ['--input', input] : [])];
    return { op: () => args, workflowId: wid, reissue: (dump) => (runOf(dump, wid) ? undefined : args) };
  };
  const orphanParent = cached('orphan', async (dir) => {
    await base(dir);
    await cli(dir, ['start', 'parent', '--id', 'p1'], { AION_FAULT_POINT: 'child-start.before-write' });
  });
  return [
    // --- deploy ---
    { name: 'load into an empty state directory', kind: 'deploy', setup: async () => {}, op: () => ['load', A.hello_v1!.path], codes: [0] },
    { name: 'load a new version (route moves, runs present)', kind: 'deploy', setup: withWaiting, op: () => ['load', A.hello_v2!.path], codes: [0] },
    { name: 're-load the routed version', kind: 'deploy', setup: base, op: () => ['load', A.hello_v1!.path], codes: [0] },
    { name: 're-load an unrouted version (route flips back)', kind: 'deploy', setup: withV2, op: () => ['load', A.hello_v1!.path], codes: [0] },
    { name: 'route back to an older version', kind: 'deploy', setup: withV2, op: () => ['route', 'hello', A.hello_v1!.version], codes: [0] },
    { name: 'route to the routed version', kind: 'deploy', setup: withV2, op: () => ['route', 'hello', A.hello_v2!.version], codes: [0] },
    { name: 'ramp to a second version', kind: 'deploy', setup: withV2, op: () => ['ramp', 'hello', A.hello_v1!.version, '30'], codes: [0] },
    { name: 'promote a ramp (route clears it)', kind: 'deploy', setup: withRamp, op: () => ['route', 'hello', A.hello_v1!.version], codes: [0] },
    { name: 'unload a drained version', kind: 'deploy', setup: withV2, op: () => ['unload', 'hello', A.hello_v1!.version], codes: [0, 3] },
    {
      name: 'unload a pinned version (refused)',
      kind: 'deploy',
      setup: async (dir) => {
        await withWaiting(dir);
        await load(dir, 'approval_v2');
      },
      op: () => ['unload', 'approval', A.approval!.version],
      codes: [4],
    },
    // A package with several types (family: parent, internal child, echo): all of its types or none.
    { name: 'load a package with several types', kind: 'deploy', setup: async () => {}, op: () => ['load', A.family_v1!.path], codes: [0] },
    { name: 'load a new version of a package with several types', kind: 'deploy', setup: withFamily, op: () => ['load', A.family_v2!.path], codes: [0] },
    { name: 'unload a version of a package with several types', kind: 'deploy', setup: withFamilyV2, op: () => ['unload', 'family_child', A.family_v1!.version], codes: [0, 3] },
    // --- runs ---
    { name: 'start a parent whose child type is internal', kind: 'run', setup: withFamily, ...startOp('family', 'f1', '{"name":"x"}'), codes: [0] },
    { name: 'start hello', kind: 'run', setup: base, ...startOp('hello', 'w1', '{"name":"x"}'), codes: [0] },
    { name: 'start order (activity)', kind: 'run', setup: base, ...startOp('order', 'o1'), codes: [0] },
    { name: 'start parent (child workflow)', kind: 'run', setup: base, ...startOp('parent', 'p1'), codes: [0] },
    { name: 'start counter (continue-as-new)', kind: 'run', setup: base, ...startOp('counter', 'c1', '{"n":0}'), codes: [0] },
    { name: 'start sleeper (durable timer)', kind: 'run', setup: base, ...startOp('sleeper', 's1'), codes: [0] },
    {
      name: 'signal a waiting run',
      kind: 'run',
      setup: withWaiting,
      op: () => ['signal', 'a1', 'approve', '--input', '"yes"'],
      workflowId: 'a1',
      reissue: (dump) => (hist(dump, 'a1', 'SignalReceived') ? undefined : ['signal', 'a1', 'approve', '--input', '"yes"']),
      codes: [0],
    },
    {
      name: 'serve fires a due timer',
      kind: 'run',
      setup: async (dir) => {
        await base(dir);
        await cli(dir, ['start', 'sleeper', '--id', 's1']);
      },
      op: () => ['serve', '--until-idle'],
      workflowId: 's1',
      codes: [0],
    },
    { name: 'serve starts a recorded child', kind: 'run', setup: orphanParent, op: () => ['serve', '--until-idle'], workflowId: 'p1', codes: [0] },
    {
      name: 'terminate a parent whose child never started',
      kind: 'run',
      setup: orphanParent,
      op: () => ['terminate', 'p1', '--reason', 'test'],
      workflowId: 'p1',
      reissue: (dump) => (runOf(dump, 'p1')?.status === 'running' ? ['terminate', 'p1', '--reason', 'test'] : undefined),
      codes: [0],
    },
  ];
}

interface Prepared {
  scenario: Scenario;
  template: string;
  before: Dump;
  after: Dump;
  /** Fault point → how many times a faultless run passes it. */
  hits: Map<string, number>;
  ms: number;
}

async function prepare(s: Scenario, i: number): Promise<Prepared> {
  const template = path.join(root, `t${i}`);
  await s.setup(template);
  const before = await dumpState(template);
  const scratch = path.join(root, `t${i}-after`);
  copyState(template, scratch);
  const trace = path.join(root, `t${i}.trace`);
  const r = await runAion(['--state-dir', scratch, '--json', ...s.op()], { env: { AION_FAULT_TRACE: trace } });
  assert.ok(s.codes.includes(r.code), `${s.name}: faultless run exited ${r.code}: ${r.stderr}${r.stdout}`);
  const after = await dumpState(scratch);
  const hits = new Map<string, number>();
  if (existsSync(trace)) for (const p of readFileSync(trace, 'utf8').split('\n').filter(Boolean)) hits.set(p, (hits.get(p) ?? 0) + 1);
  // The faultless result must itself be consistent (else every kill would "find" it).
  for (const p of checkInvariants(after)) stats.failures.push(`${s.name}: faultless run leaves: ${p}`);
  return { scenario: s, template, before, after, hits, ms: r.ms };
}

/** After a kill: checks, then retries to completion and compares with the faultless run. */
async function examine(p: Prepared, dir: string, label: string, rand?: () => number): Promise<void> {
  const s = p.scenario;
  const fail = (m: string) => stats.failures.push(`${s.name} [${label}]: ${m}`);
  const post = await dumpState(dir);
  for (const problem of checkInvariants(post)) fail(problem);
  for (const k of lostEvents(p.before, post)) fail(`lost history event ${k}`);
  // A kill between an archive file and its batch (or an unload's batch and the file's removal)
  // leaves an orphan file: allowed, reported by doctor, removed by the next writable command.
  const orphans = orphanArchiveFiles(post);
  const isOrphan = (line: string) => orphans.some((name) => line.startsWith(`orphan_archive archives/${name}:`));
  const doctor = await checkStateDir(dir);
  if (doctor.some((line) => !isOrphan(line))) fail(`aion doctor disagrees: ${doctor.filter((line) => !isOrphan(line)).join('; ')}`);
  for (const name of orphans) if (!doctor.some((line) => line.startsWith(`orphan_archive archives/${name}:`))) fail(`aion doctor does not report the orphan archive file ${name}`);
  if (orphans.length > 0) stats.extra['orphan archive files left by a kill'] = (stats.extra['orphan archive files left by a kill'] ?? 0) + orphans.length;
  if (s.kind === 'deploy') {
    const view = deployView(post);
    if (view !== deployView(p.before) && view !== deployView(p.after)) fail(`deploy state is neither before nor after:\n${view}`);
    if (runDigest(post) !== runDigest(p.before)) fail('a deploy operation changed run state');
    const retry = await runAion(['--state-dir', dir, '--json', ...s.op()]);
    stats.operations++;
    if (!s.codes.includes(retry.code)) fail(`retry exited ${retry.code}: ${retry.stderr}`);
    const final = await dumpState(dir);
    for (const problem of checkInvariants(final)) fail(`after retry: ${problem}`);
    for (const name of orphanArchiveFiles(final)) fail(`after retry: the orphan archive file ${name} is still there`);
    const strip = (v: string) => JSON.stringify({ ...JSON.parse(v), audit: undefined });
    if (strip(deployView(final)) !== strip(deployView(p.after))) fail(`after retry the deploy state differs from a faultless run:\n${deployView(final)}\n${deployView(p.after)}`);
    return;
  }
  const again = s.reissue?.(await dumpState(dir));
  if (again) {
    const r = await runAion(['--state-dir', dir, '--json', ...again]);
    stats.operations++;
    if (r.code !== 0) fail(`re-issued ${again.join(' ')} exited ${r.code}: ${r.stderr}`);
  }
  // A crash during recovery, too, sometimes.
  if (rand && rand() < 0.3) {
    const r = await runAion(['--state-dir', dir, 'serve', '--until-idle'], { killAfterMs: Math.floor(rand() * 600) });
    stats.operations++;
    if (r.killed) {
      stats.faults++;
      const mid = await dumpState(dir);
      for (const problem of checkInvariants(mid)) fail(`after a second kill: ${problem}`);
      for (const k of lostEvents(post, mid)) fail(`second kill lost history event ${k}`);
    }
  }
  const serve = await runAion(['--state-dir', dir, '--json', 'serve', '--until-idle']);
  stats.operations++;
  if (serve.code !== 0) fail(`recovery (serve --until-idle) exited ${serve.code}: ${serve.stderr}`);
  const final = await dumpState(dir);
  for (const problem of checkInvariants(final)) fail(`after recovery: ${problem}`);
  for (const name of orphanArchiveFiles(final)) fail(`after recovery: the orphan archive file ${name} is still there`);
  for (const k of lostEvents(post, final)) fail(`recovery lost history event ${k}`);
  const want = await finalOf(p);
  const got = runOf(final, s.workflowId!);
  if (!got || got.status !== want.status || JSON.stringify(got.result) !== JSON.stringify(want.result)) {
    fail(`final run ${s.workflowId} is ${got?.status} ${JSON.stringify(got?.result)}, a faultless run ends ${want.status} ${JSON.stringify(want.result)}`);
  }
}

/** The faultless run's final record, after its own serve --until-idle. */
const finals = new Map<Prepared, Promise<any>>();
function finalOf(p: Prepared): Promise<any> {
  let f = finals.get(p);
  if (!f) {
    f = (async () => {
      const dir = `${p.template}-final`;
      copyState(p.template, dir);
      await runAion(['--state-dir', dir, '--json', ...p.scenario.op()]);
      await runAion(['--state-dir', dir, 'serve', '--until-idle']);
      return runOf(await dumpState(dir), p.scenario.workflowId!);
    })();
    finals.set(p, f);
  }
  return f;
}

let prepared: Prepared[] = [];

test('crash consistency: prepare the scenarios', { timeout: 600_000 }, async () => {
  for (const [name, fixture] of [['hello_v1', 'hello_v1'], ['hello_v2', 'hello_v2'], ['approval', 'approval'], ['parent', 'parent'], ['order', 'order'], ['counter', 'counter'], ['sleeper', 'sleeper'], ['family_v1', 'family_v1'], ['family_v2', 'family_v2']] as const) {
    A[name] = await packFixture(fixture, root, `${name}.aion`);
  }
  A.approval_v2 = await packVariant('approval', root, 'approval_v2');
  const all = scenarios();
  prepared = new Array(all.length);
  await pool(all, WIDTH, async (s, i) => {
    prepared[i] = await prepare(s, i);
  });
  for (const p of prepared) assert.ok(p.hits.size > 0 || p.scenario.codes.includes(4), `${p.scenario.name}: the operation passed no fault point`);
});

test('crash consistency: SIGKILL at every named fault point', { timeout: 1_800_000 }, async () => {
  const kills: { p: Prepared; point: string; skip: number }[] = [];
  for (const p of prepared) {
    for (const [point, count] of p.hits) {
      // The bounded form kills at the first hit of each point; the full form at every hit.
      const skips = FULL ? [...Array(count).keys()] : [0];
      for (const skip of skips) kills.push({ p, point, skip });
    }
  }
  await pool(kills, WIDTH, async ({ p, point, skip }, i) => {
    const dir = path.join(root, `k${i}`);
    copyState(p.template, dir);
    const r = await runAion(['--state-dir', dir, '--json', ...p.scenario.op()], { env: { AION_FAULT_POINT: point, AION_FAULT_SKIP: String(skip) } });
    stats.operations++;
    if (!r.killed) {
      // Timing-dependent paths may pass a point fewer times; then the run must just succeed.
      if (!p.scenario.codes.includes(r.code)) stats.failures.push(`${p.scenario.name} [${point}#${skip}]: not killed, exited ${r.code}`);
      stats.extra['points not reached'] = (stats.extra['points not reached'] ?? 0) + 1;
    } else {
      stats.faults++;
      stats.extra['named kills'] = (stats.extra['named kills'] ?? 0) + 1;
      await examine(p, dir, `${point}#${skip}`, rng(i + 1));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  assert.deepEqual(stats.failures, []);
});

test('crash consistency: SIGKILL at random times', { timeout: 1_800_000 }, async () => {
  const n = FULL ? 200 : 16;
  const rand = rng(20240607);
  const jobs = Array.from({ length: n }, () => ({ p: prepared[Math.floor(rand() * prepared.length)]!, delay: rand() }));
  await pool(jobs, WIDTH, async ({ p, delay }, i) => {
    const dir = path.join(root, `r${i}`);
    copyState(p.template, dir);
    // Spread the kills over the operation's whole life, start-up included.
    const r = await runAion(['--state-dir', dir, '--json', ...p.scenario.op()], { killAfterMs: Math.floor(delay * p.ms * 1.1) });
    stats.operations++;
    if (r.killed) {
      stats.faults++;
      stats.extra['random kills'] = (stats.extra['random kills'] ?? 0) + 1;
      await examine(p, dir, `random ${Math.floor(delay * p.ms * 1.1)}ms`, rng(1000 + i));
    } else if (!p.scenario.codes.includes(r.code)) {
      stats.failures.push(`${p.scenario.name} [random]: exited ${r.code}: ${r.stderr}`);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  assert.deepEqual(stats.failures, []);
});

test('crash consistency: summary', () => {
  report(stats);
  rmSync(root, { recursive: true, force: true });
});
