// A fleet through bin/aion: three `aion serve` workers as separate processes on one
// PostgreSQL schema, and operators as separate processes. Skips loudly without PostgreSQL.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, ROOT, aionAsync, tempDir } from '../helpers/cli.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { packFixture, packVariant, type Packed } from '../helpers/packages.js';
import { dropSchema, freshSchema, pgServer, withSchema } from '../helpers/postgres.js';

const LEASE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Worker {
  child: ChildProcess;
  id: string;
  stderr: string;
}

function startWorker(store: string): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: ROOT, env: { ...process.env, AION_STORE: store, AION_LEASE_MS: String(LEASE_MS) }, stdio: ['ignore', 'ignore', 'pipe'] });
    const w: Worker = { child, id: '', stderr: '' };
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      w.stderr += d;
      const m = /listening on worker (\S+)/.exec(w.stderr);
      if (m && !w.id) {
        w.id = m[1]!;
        resolve(w);
      }
    });
    child.on('exit', (code) => !w.id && reject(new Error(`aion serve exited ${code}: ${w.stderr}`)));
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('a fleet of three aion serve workers on PostgreSQL', { timeout: 120_000 }, () => {
  let base = '';
  let skip: string | undefined;
  const schema = freshSchema();
  let store = '';
  let work: { dir: string; cleanup: () => void };
  let approval: Packed;
  let approval2: Packed;
  let hello1: Packed;
  let hello2: Packed;
  let gated: Packed;
  const workers: Worker[] = [];
  const op = (args: string[], json = true) => aionAsync(json ? [...args, '--json'] : args, { env: { AION_STORE: store } });

  before(async () => {
    const server = await pgServer();
    if ('skip' in server) {
      skip = server.skip;
      process.stderr.write(`SKIPPED: fleet tests: ${skip}\n`);
      return;
    }
    base = server.url;
    store = withSchema(base, schema);
    work = tempDir('aion-fleet-');
    [approval, approval2, hello1, hello2] = await Promise.all([
      packFixture('approval', work.dir),
      packFixture('approval_v2', work.dir),
      packFixture('hello_v1', work.dir),
      packFixture('hello_v2', work.dir),
    ]);
    // Waits for the signal `go`, then runs a 3 s activity: a run killed mid-activity.
    gated = await packVariant('slow_activity', work.dir, 'gated', (dir) =>
      writeFileSync(
        path.join(dir, 'modules', 'slow_activity.js'),
        "exports.run = async (ctx) => { await ctx.signal('go'); return { slept: await ctx.activity('slow', { ms: 3000 }), version: ctx.info.version }; };\n" +
          "exports.activities = { slow: async (input) => { console.error('SLOW-ACTIVITY-STARTED'); await new Promise((r) => setTimeout(r, input.ms)); return input.ms; } };\n",
      ),
    );
    assert.equal((await op(['load', gated.path])).code, 0);
    assert.equal((await op(['load', approval.path])).code, 0);
    assert.equal((await op(['load', hello1.path])).code, 0);
    for (let i = 0; i < 3; i++) workers.push(await startWorker(store));
  });

  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    if (base) await dropSchema(base, schema);
    work?.cleanup();
  });

  test('aion workers lists the three', async (t) => {
    if (skip) return t.skip(skip);
    const r = await op(['workers']);
    assert.equal(r.code, 0, r.stderr);
    const ids = (r.json.workers as { id: string; pid: number; host: string; runs: number }[]).map((w) => w.id).sort();
    assert.deepEqual(ids, workers.map((w) => w.id).sort());
    // status and top show the same fleet (JSON `workers`, and a line of text).
    for (const cmd of [['status'], ['top']]) {
      const shown = await op(cmd);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual((shown.json.workers as { id: string }[]).map((w) => w.id).sort(), ids, `${cmd[0]} --json lists the workers`);
    }
    const text = await op(['status'], false);
    assert.match(text.stdout, /^fleet: 3 workers \(/m, text.stdout);
  });

  test('a route flip under concurrent starts: every start after load returns takes the new version', async (t) => {
    if (skip) return t.skip(skip);
    const during = Array.from({ length: 6 }, (_, i) => op(['start', 'hello', '--input', '{"name":"x"}', '--id', `flip-${i}`]));
    const load = await op(['load', hello2.path]);
    assert.equal(load.code, 0, load.stderr);
    const afterLoad = await Promise.all(Array.from({ length: 6 }, (_, i) => op(['start', 'hello', '--input', '{"name":"y"}', '--id', `post-${i}`])));
    for (const r of afterLoad) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.version, hello2.version, 'a start after load returned took the new route');
    }
    for (const r of await Promise.all(during)) {
      assert.equal(r.code, 0, r.stderr);
      assert.ok([hello1.version, hello2.version].includes(r.json.version));
    }
  });

  test('unload is refused while a worker runs a pinning run, naming the worker', async (t) => {
    if (skip) return t.skip(skip);
    const started = await op(['start', 'approval', '--input', '{}', '--id', 'pinned-1']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await op(['load', approval2.path])).code, 0);
    // The one-shot start handed its lease back; a worker claims the run within a heartbeat.
    const holder = await until('a worker to lease the run', async () => {
      const r = await op(['unload', 'approval', approval.version.slice(0, 12)]);
      assert.equal(r.code, 4, r.stderr);
      const h = (r.json.error.holders as { kind: string; worker?: string }[]).find((x) => x.kind === 'live_run');
      return h?.worker;
    });
    assert.ok(workers.some((w) => w.id === holder), `the holder ${holder} is one of the workers`);
  });

  test('kill -9 of a worker: its parked runs complete on the others, no step recorded twice', async (t) => {
    if (skip) return t.skip(skip);
    const ids = Array.from({ length: 9 }, (_, i) => `park-${i}`);
    for (const id of ids) {
      const r = await op(['start', 'approval', '--input', '{}', '--id', id]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    // Every run leased by some worker.
    const leased = await until('every parked run to be leased', async () => {
      const r = await op(['workers']);
      const total = (r.json.workers as { runs: number }[]).reduce((n, w) => n + w.runs, 0);
      return total >= ids.length ? (r.json.workers as { id: string; runs: number }[]) : undefined;
    });
    const victim = workers.find((w) => w.id === leased.filter((w) => w.runs > 0)[0]!.id)!;
    victim.child.kill('SIGKILL');
    await new Promise((r) => victim.child.once('exit', r));
    for (const id of ids) {
      const r = await op(['signal', id, 'approve', '--input', '"yes"']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    for (const id of ids) {
      const shown = await until(`${id} to complete`, async () => {
        const r = await op(['show', id]);
        return r.json?.status === 'completed' ? r.json : undefined;
      });
      const types = (shown.history as { type: string }[]).map((e) => e.type);
      assert.equal(types.filter((x) => x === 'WorkflowCompleted').length, 1);
      assert.equal(types.filter((x) => x === 'SignalReceived').length, 1, `${id}: the signal recorded once`);
      assert.equal(shown.result.version, shown.version, 'completed on its recorded version');
    }
    workers.splice(workers.indexOf(victim), 1);
    // An ended run's lease went with it: the same id starts again at once from another process.
    const again = await op(['start', 'approval', '--input', '{}', '--id', ids[0]!]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  test('kill -9 of a worker mid-activity: its running runs complete on the others', async (t) => {
    if (skip) return t.skip(skip);
    const ids = Array.from({ length: 4 }, (_, i) => `busy-${i}`);
    for (const id of ids) {
      const r = await op(['start', gated.type, '--input', '{}', '--id', id]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    await until('every gated run to be leased', async () => {
      const r = await op(['workers']);
      const total = (r.json.workers as { runs: number }[]).reduce((n, w) => n + w.runs, 0);
      return total >= ids.length ? true : undefined;
    });
    const marks = workers.map((w) => (w.stderr.match(/SLOW-ACTIVITY-STARTED/g) ?? []).length);
    for (const id of ids) assert.equal((await op(['signal', id, 'go'])).code, 0);
    // A worker that started one of the activities is killed while it runs.
    const victim = await until('an activity to start on a worker', async () => workers.find((w, i) => (w.stderr.match(/SLOW-ACTIVITY-STARTED/g) ?? []).length > marks[i]!));
    victim.child.kill('SIGKILL');
    await new Promise((r) => victim.child.once('exit', r));
    workers.splice(workers.indexOf(victim), 1);
    for (const id of ids) {
      const shown = await until(`${id} to complete`, async () => {
        const r = await op(['show', id]);
        return r.json?.status === 'completed' ? r.json : undefined;
      }, 30_000);
      const types = (shown.history as { type: string }[]).map((e) => e.type);
      assert.equal(types.filter((x) => x === 'ActivityCompleted').length, 1, `${id}: the activity's result recorded once`);
      assert.equal(types.filter((x) => x === 'WorkflowCompleted').length, 1);
      assert.equal(shown.result.version, shown.version, 'completed on its recorded version');
    }
    workers.push(await startWorker(store));
  });

  test('eight concurrent operators give a serial-equivalent deploy history', async (t) => {
    if (skip) return t.skip(skip);
    const before = (await op(['history', 'hello'])).json.history.length as number;
    const targets = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? hello1.version : hello2.version));
    const results = await Promise.all(targets.map((v, i) => op(['route', 'hello', v.slice(0, 12), '-m', `op-${i}`])));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const records = ((await op(['history', 'hello'])).json.history as { operation: string; version: string; previous: string | null; message?: string }[]).slice(before);
    assert.equal(records.length, 8, 'one record per operator');
    // Serial: each record's previous is the route the one before it left.
    let route = records[0]!.previous;
    for (const r of records) {
      assert.equal(r.previous, route, `${r.message} saw the route the previous operation left`);
      route = r.version;
    }
    const versions = await op(['versions']);
    const routed = (versions.json.versions as { workflow_type: string; version: string; state: string }[]).find((v) => v.workflow_type === 'hello' && v.state === 'routed');
    assert.equal(routed?.version, route, 'the final route is the last record\'s');
  });
});
