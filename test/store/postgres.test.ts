// The PostgreSQL KV and schema, in-process: LevelDB's key order, transactions, a newer schema
// refused, bad URLs, unreachable servers, and migrate both ways. Skips loudly without PostgreSQL.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isAionError } from '../../src/errors.js';
import { PgKV } from '../../src/store/postgres.js';
import { parseStoreUrl } from '../../src/store/postgres-schema.js';
import { openLevel } from '../../src/store/level.js';
import { migrateStore } from '../../src/store/migrate.js';
import { Store, putJSON } from '../../src/store/store.js';
import { Engine } from '../../src/engine/engine.js';
import { aion, tempDir } from '../helpers/cli.js';
import { packFixture } from '../helpers/packages.js';
import { dropSchema, freshSchema, pgServer, withSchema } from '../helpers/postgres.js';

const code = (e: unknown) => (isAionError(e) ? e.code : String(e));

describe('the PostgreSQL store', () => {
  let base = '';
  let skip: string | undefined;
  const schemas: string[] = [];
  const fresh = () => {
    const s = freshSchema();
    schemas.push(s);
    return withSchema(base, s);
  };
  let work: { dir: string; cleanup: () => void };

  before(async () => {
    const server = await pgServer();
    if ('skip' in server) {
      skip = server.skip;
      process.stderr.write(`SKIPPED: PostgreSQL store tests: ${skip}\n`);
    } else base = server.url;
    work = tempDir('aion-pg-');
  });
  after(async () => {
    for (const s of schemas) await dropSchema(base, s);
    work.cleanup();
  });

  test('bad URLs are usage errors, an unreachable server is store', async (t) => {
    assert.throws(() => parseStoreUrl('mysql://x/y'), (e) => code(e) === 'usage');
    assert.throws(() => parseStoreUrl('postgres://h/db?schema=Bad-Name'), (e) => code(e) === 'usage');
    assert.throws(() => parseStoreUrl('not a url'), (e) => code(e) === 'usage');
    await assert.rejects(PgKV.open('postgres://postgres@127.0.0.1:1/test', { create: true }), (e) => code(e) === 'store' && /127\.0\.0\.1:1/.test((e as Error).message));
    if (skip) t.diagnostic(`server part skipped: ${skip}`);
  });

  test('range scans return the same keys in the same order as LevelDB', async (t) => {
    if (skip) return t.skip(skip);
    const keys = ['a', 'a\x00b', 'a\x00b\x00c', 'a\x00c', 'a\x01', 'b', 'é', 'z\xff', 'run\x00x', 'run\x00x\x00', 'run\x00y', 'ü\x00a'];
    const pgkv = await PgKV.open(fresh(), { create: true });
    const level = await openLevel(path.join(work.dir, 'order'), { lockTimeoutMs: 1000 });
    try {
      const ops = keys.map((k, i) => ({ type: 'put' as const, key: k, value: new Uint8Array([i]) }));
      await pgkv.batch(ops, { sync: true });
      await level.batch(ops, { sync: true });
      const ranges = [{}, { gt: 'a\x00', lt: 'a\x00\xff' }, { gte: 'a', lte: 'b' }, { reverse: true, limit: 3 }, { gt: 'run\x00', lt: 'run\x00\xff', reverse: true }, { limit: 0 }];
      for (const r of ranges) {
        const got: string[] = [];
        for await (const k of pgkv.keys(r)) got.push(k);
        const want: string[] = [];
        for await (const k of level.keys(r)) want.push(k);
        assert.deepEqual(got, want, JSON.stringify(r));
      }
      assert.deepEqual(await pgkv.getMany(['b', 'nope', 'a']), [new Uint8Array([5]), undefined, new Uint8Array([0])]);
    } finally {
      await pgkv.close();
      await level.close();
    }
  });

  test('a failed transaction writes nothing', async (t) => {
    if (skip) return t.skip(skip);
    const kv = await PgKV.open(fresh(), { create: true });
    try {
      await assert.rejects(
        kv.hold(async () => {
          await kv.batch([{ type: 'put', key: 'x', value: new Uint8Array([1]) }], { sync: true });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await kv.get('x'), undefined);
    } finally {
      await kv.close();
    }
  });

  test('a schema newer than this aion is refused with store and left untouched', async (t) => {
    if (skip) return t.skip(skip);
    const url = fresh();
    const kv = await PgKV.open(url, { create: true });
    await kv.query('UPDATE aion_schema SET version = 99');
    await kv.close();
    await assert.rejects(PgKV.open(url, { create: true }), (e) => code(e) === 'store' && /version 99/.test((e as Error).message));
  });

  test('migrate copies a state directory into PostgreSQL and back; a non-empty target is refused', async (t) => {
    if (skip) return t.skip(skip);
    const dir = path.join(work.dir, 'mig');
    const store = await Store.open(dir, { create: true, lockTimeoutMs: 1000 });
    await store.write([putJSON('route\x00hello', 'v'), putJSON('run\x00w1', { a: 1 })], { sync: true });
    await store.close();
    const url = fresh();
    const there = await migrateStore(dir, url, { lockTimeoutMs: 1000 });
    assert.equal(there.copied, 2);
    await assert.rejects(migrateStore(dir, url, { lockTimeoutMs: 1000 }), (e) => code(e) === 'conflict');
    await assert.rejects(migrateStore(dir, dir, { lockTimeoutMs: 1000 }), (e) => code(e) === 'usage');
    const back = path.join(work.dir, 'back');
    const report = await migrateStore(url, back, { lockTimeoutMs: 1000 });
    assert.equal(report.copied, 2);
    const again = await Store.open(back, { create: false, lockTimeoutMs: 1000 });
    try {
      assert.deepEqual(await again.getJSON('run\x00w1'), { a: 1 });
    } finally {
      await again.close();
    }
  });

  test('migrate carries a loaded package: its archive file becomes a row there, and runs start on both sides', async (t) => {
    if (skip) return t.skip(skip);
    const hello = await packFixture('hello_v1', work.dir, 'mig-hello.aion');
    const dir = path.join(work.dir, 'mig-pkg');
    const start = async (options: { stateDir: string; store?: string }, id: string) => {
      const engine = await Engine.open({ ...options, create: false, lockTimeoutMs: 5_000 });
      try {
        return (await engine.runs.start('hello', { name: id }, { workflowId: id })).status;
      } finally {
        await engine.close();
      }
    };
    const engine = await Engine.open({ stateDir: dir, create: true, lockTimeoutMs: 5_000 });
    await engine.loadPackage({ path: hello.path });
    await engine.close();
    const url = fresh();
    const there = await migrateStore(dir, url, { lockTimeoutMs: 5_000 });
    assert.deepEqual(there.doctor.problems, [], 'doctor finds the archive in PostgreSQL');
    assert.equal(await start({ stateDir: path.join(work.dir, 'unused'), store: url }, 'on-pg'), 'completed');
    const back = path.join(work.dir, 'mig-pkg-back');
    const report = await migrateStore(url, back, { lockTimeoutMs: 5_000 });
    assert.deepEqual(report.doctor.problems, [], 'and in the state directory it came back to');
    assert.equal(await start({ stateDir: back }, 'back-home'), 'completed');
  });

  test('through bin/aion: bad --store, workers without a store, migrate misuse', async (t) => {
    const bad = aion(['runs', '--store', 'mysql://x/y', '--json']);
    assert.equal(bad.code, 2, bad.stdout);
    assert.equal(bad.json.error.code, 'usage');
    const env = aion(['runs', '--json'], { env: { AION_STORE: 'file:///tmp/x' } });
    assert.equal(env.code, 2, env.stdout);
    const down = aion(['runs', '--store', 'postgres://postgres@127.0.0.1:1/test', '--json']);
    assert.equal(down.code, 10, down.stdout);
    assert.equal(down.json.error.code, 'store');
    const noStore = aion(['workers', '--json'], { env: { AION_STORE: '' } });
    assert.equal(noStore.code, 2, noStore.stdout);
    const twoDirs = aion(['migrate', '--from', path.join(work.dir, 'a'), '--to', path.join(work.dir, 'b'), '--json']);
    assert.equal(twoDirs.code, 2, twoDirs.stdout);
    if (skip) return t.diagnostic(`server part skipped: ${skip}`);
    const missing = aion(['migrate', '--from', path.join(work.dir, 'nothing-here'), '--to', fresh(), '--json']);
    assert.equal(missing.code, 3, missing.stdout);
  });

  test('leases: only the lessee drives; an expired lease is taken over and fences the old lessee out', async (t) => {
    if (skip) return t.skip(skip);
    const url = fresh();
    const { Engine } = await import('../../src/engine/engine.js');
    const { packFixture } = await import('../helpers/packages.js');
    const { K } = await import('../../src/store/keys.js');
    const approval = await packFixture('approval', work.dir);
    const open = () => Engine.open({ stateDir: work.dir, store: url, create: true, lockTimeoutMs: 1000, onWarning: () => {} });
    const a = await open();
    const b = await open();
    try {
      await a.loadPackage({ path: approval.path });
      const started = await a.runs.start('approval', {}, { workflowId: 'l1' });
      assert.equal(started.status, 'running');
      assert.equal(await b.fleet!.mayDrive('l1'), false, 'b leaves a run a leases');
      assert.equal(await a.fleet!.mayDrive('l1'), true);
      // b's signal is a command: written, not driven by b.
      const signalled = await b.runs.signal('l1', 'approve', 'yes');
      assert.equal(signalled.status, 'running');
      const kv = a.store.backend as import('../../src/store/postgres.js').PgKV;
      // a stops renewing (as if it hung): its lease runs out and b takes the run over.
      await kv.query("UPDATE aion_leases SET expires_at = now() - interval '1 second' WHERE workflow_id = 'l1'");
      assert.equal(await b.fleet!.mayDrive('l1'), true, 'an expired lease is taken');
      const rec = await a.runs.getRun('l1');
      // a drive write by the old lessee is refused, and writes nothing.
      await assert.rejects(a.store.write([putJSON(K.run('l1'), { ...rec, events: 99 })], { sync: false }), (e) => code(e) === 'store' && ((e as Error).cause as Error).name === 'LeaseLost');
      assert.equal((await a.runs.getRun('l1'))!.events, rec!.events);
      b.runs.enqueue('l1');
      await b.runs.settle(['l1']);
      const shown = await b.runs.show('l1');
      assert.equal(shown.status, 'completed');
      assert.equal((shown.history as { type: string }[]).filter((e) => e.type === 'SignalReceived').length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
