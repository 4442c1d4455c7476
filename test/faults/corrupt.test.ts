// Corrupt state: a damaged package row, route pointer, history, archive, pin, marker or timer
// entry is reported clearly, the rest of the state directory keeps working, and `aion doctor`
// finds it (exit 10), repairs only what is safe with --repair, and never touches histories or
// archives a package row names (orphan archive files, which nothing names, it removes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Level } from 'level';
import { packFixture, storedArchive, type Packed } from '../helpers/packages.js';
import { checkInvariants, copyState, dumpState, newStats, report, runAion, runOf, tempDir, type Dump } from './support.js';

const stats = newStats('corrupt');
const root = tempDir('aion-corrupt-');
const template = path.join(root, 'template');
const A: Record<string, Packed> = {};
const enc = new TextEncoder();

async function mutate(stateDir: string, fn: (db: Level<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<string, Uint8Array>(path.join(stateDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

const aion = async (dir: string, ...args: string[]) => {
  stats.operations++;
  return runAion(['--state-dir', dir, '--json', ...args]);
};

let n = 0;
async function damaged(fn: (db: Level<string, Uint8Array>, dump: Dump, dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(root, `case-${n++}`);
  copyState(template, dir);
  const dump = await dumpState(dir);
  await mutate(dir, (db) => fn(db, dump, dir));
  stats.faults++;
  return dir;
}

function doctorProblems(r: { json: any }): { kind: string; key: string; repairable: boolean }[] {
  return (r.json?.problems ?? []) as { kind: string; key: string; repairable: boolean }[];
}

test('corrupt state: prepare a state directory', { timeout: 120_000 }, async () => {
  for (const name of ['hello_v1', 'hello_v2', 'approval', 'sleeper']) A[name] = await packFixture(name, root);
  for (const name of ['hello_v1', 'hello_v2', 'approval', 'sleeper']) assert.equal((await aion(template, 'load', A[name]!.path)).code, 0);
  assert.equal((await aion(template, 'start', 'approval', '--id', 'a1')).code, 0);
  assert.equal((await aion(template, 'start', 'approval', '--id', 'a2')).code, 0);
  assert.equal((await aion(template, 'start', 'sleeper', '--id', 's1')).code, 0);
  assert.equal((await aion(template, 'start', 'hello', '--id', 'w1')).code, 0);
  const doctor = await aion(template, 'doctor');
  assert.equal(doctor.code, 0, doctor.stdout);
  assert.deepEqual(doctor.json, { ok: true, problems: [], repaired: [] });
});

test('corrupt state: a damaged package row', async () => {
  const key = `pkg\x00hello\x00${A.hello_v1!.version}`;
  const dir = await damaged((db) => db.put(key, enc.encode('{"not a row')));
  const versions = await aion(dir, 'versions');
  assert.equal(versions.code, 0);
  assert.match(versions.stderr, /skipping package pkg\/hello\/[0-9a-f]{64}: corrupt record/);
  assert.deepEqual(versions.json.versions.map((v: { workflow_type: string }) => v.workflow_type).sort(), ['approval', 'hello', 'sleeper']);
  assert.equal((await aion(dir, 'start', 'hello', '--id', 'w2')).code, 0, 'the routed version still starts');
  assert.equal((await aion(dir, 'signal', 'a1', 'approve', '--input', '"ok"')).json.status, 'completed');
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.repairable]), [['corrupt_package_row', true]]);
  const text = await runAion(['--state-dir', dir, 'doctor']);
  assert.match(text.stdout, /corrupt_package_row pkg\/hello\/[0-9a-f]{64}\n\s+package row of hello [0-9a-f]{12} is unusable \(not valid JSON\)/);
  const repair = await aion(dir, 'doctor', '--repair');
  assert.equal(repair.code, 0, repair.stdout);
  assert.equal(repair.json.repaired.length, 1);
  assert.equal((await aion(dir, 'doctor')).code, 0);
  const again = await aion(dir, 'versions', 'hello');
  assert.equal(again.json.versions.length, 2, 'the rebuilt row makes the version visible again');
  assert.equal(again.stderr, '');
});

test('corrupt state: a damaged row of an additional type of a package is rebuilt from its archive', async () => {
  const family = await packFixture('family_v1', root);
  const dir = path.join(root, 'family-row');
  assert.equal((await aion(dir, 'load', family.path)).code, 0);
  const key = `pkg\x00family_echo\x00${family.version}`;
  await mutate(dir, (db) => db.put(key, enc.encode('{"not a row')));
  stats.faults++;
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.repairable]), [['corrupt_package_row', true]]);
  const repair = await aion(dir, 'doctor', '--repair');
  assert.equal(repair.code, 0, repair.stdout);
  assert.equal((await aion(dir, 'doctor')).code, 0);
  const versions = await aion(dir, 'versions', 'family_echo');
  assert.equal(versions.json.versions.length, 1, 'the rebuilt row makes the type visible again');
  assert.equal(versions.json.versions[0].deployed_entry_module, `family@echo$${family.version}`, "the row names the type's own entry, not the package's");
  const run = await aion(dir, 'start', 'family_echo', '--input', '"hi"');
  assert.equal(run.code, 0, run.stdout);
  assert.equal(run.json.status, 'completed');
  assert.deepEqual((await aion(dir, 'show', run.json.workflow_id)).json.result, { echo: 'hi' });
});

test('corrupt state: a route pointer to a missing version', async () => {
  const dir = await damaged((db) => db.put('route\x00hello', enc.encode('f'.repeat(64))));
  const versions = await aion(dir, 'versions');
  assert.equal(versions.code, 0);
  assert.match(versions.stderr, /the route of 'hello' points at version ffffffffffff, which is not loaded: starts of 'hello' are refused/);
  const start = await aion(dir, 'start', 'hello');
  assert.equal(start.code, 3, 'no routed version: not_found, clearly');
  assert.match(start.json.error.message, /the routed version ffffffffffff of 'hello' is not loaded/, 'naming the routed version, not "no loaded version"');
  assert.equal((await aion(dir, 'start', 'sleeper', '--id', 's2')).code, 0, 'other types keep working');
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.key, p.repairable]), [['dangling_route', 'route/hello', true]]);
  assert.equal((await aion(dir, 'doctor', '--repair')).code, 0);
  const after = await dumpState(dir);
  assert.equal(after.has('route\x00hello'), false, 'the dangling route was dropped');
  assert.equal(after.has(`afile\x00${A.hello_v1!.version}.aion`), true, 'archives stay');
  assert.equal((await aion(dir, 'route', 'hello', A.hello_v1!.version)).code, 0);
  assert.equal((await aion(dir, 'doctor')).code, 0);
});

test('corrupt state: a damaged history', async () => {
  let runId = '';
  const dir = await damaged(async (db, dump) => {
    runId = runOf(dump, 'a1').run_id;
    await db.put(`hist\x00${runId}\x00${'0'.repeat(9)}1`, enc.encode('\u0000garbage'));
  });
  const before = await dumpState(dir);
  const show = await aion(dir, 'show', 'a1');
  assert.equal(show.code, 10);
  assert.equal(show.json.error.code, 'store');
  assert.match(show.json.error.message, new RegExp(`corrupt record hist/${runId}/0000000001: not valid JSON`));
  assert.equal((await aion(dir, 'show', 'a2')).code, 0, 'other runs show');
  assert.equal((await aion(dir, 'signal', 'a2', 'approve', '--input', '"y"')).json.status, 'completed', 'other runs progress');
  const serve = await aion(dir, 'serve', '--until-idle');
  assert.equal(serve.code, 0, `serve survives the damaged run: ${serve.stderr}`);
  assert.match(serve.stderr, /a1/);
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.repairable]), [['corrupt_history', false]]);
  const repair = await aion(dir, 'doctor', '--repair');
  assert.equal(repair.code, 10, 'a history is never repaired');
  const after = await dumpState(dir);
  for (const [k, v] of before) if (k.startsWith(`hist\x00${runId}`)) assert.deepEqual(after.get(k), v, 'the history is untouched');
});

test('corrupt state: a missing and a damaged archive', async () => {
  const v1 = A.hello_v1!.version;
  const dir = await damaged(async (_db, dump, dir) => {
    rmSync(storedArchive(dir, A.approval!.version));
    const arc = dump.get(`afile\x00${v1}.aion`)!;
    const flipped = new Uint8Array(arc);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
    writeFileSync(storedArchive(dir, v1), flipped);
  });
  const signal = await aion(dir, 'signal', 'a1', 'approve');
  assert.equal(signal.code, 0, 'the signal is recorded');
  assert.equal(signal.json.status, 'running', 'but the run cannot progress');
  assert.match(signal.stderr, /run a1 could not progress: the archive of approval [0-9a-f]{12} is missing/);
  assert.equal((await aion(dir, 'start', 'hello', '--id', 'w3')).code, 0, 'the routed hello version is intact');
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.key, p.repairable]).sort(), [
    ['corrupt_archive', `archives/${v1}.aion`, false],
    ['missing_archive', `archives/${A.approval!.version}.aion`, false],
  ]);
  assert.equal((await aion(dir, 'doctor', '--repair')).code, 10, 'archives are never repaired or deleted');
  assert.equal((await dumpState(dir)).has(`afile\x00${v1}.aion`), true);
  // Loading the archive again stores a good file: the damage is gone.
  assert.equal((await aion(dir, 'load', A.hello_v1!.path, '--no-route')).code, 0);
  assert.equal((await aion(dir, 'load', A.approval!.path)).code, 0);
  assert.equal((await aion(dir, 'doctor')).code, 0);
  assert.equal((await aion(dir, 'serve', '--until-idle')).code, 0);
  assert.equal(runOf(await dumpState(dir), 'a1').status, 'completed', 'the stalled run progresses once its archive is back');
});

test('corrupt state: orphan archive files (an interrupted load or unload) are reported, and removed by --repair or any writable command', async () => {
  const orphan = 'a'.repeat(64);
  const make = async () =>
    damaged(async (_db, _dump, dir) => {
      writeFileSync(storedArchive(dir, orphan), 'not even a zip');
      writeFileSync(path.join(dir, 'archives', `.tmp-${orphan.slice(0, 16)}-1-deadbeef`), 'half');
    });
  const dir = await make();
  assert.equal((await aion(dir, 'versions')).code, 0, 'read commands do not mind them');
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(doctorProblems(doctor).map((p) => [p.kind, p.key, p.repairable]), [
    ['orphan_archive', `archives/${orphan}.aion`, true],
    ['orphan_archive', `archives/.tmp-${orphan.slice(0, 16)}-1-deadbeef`, true],
  ]);
  assert.equal(readdirSync(path.join(dir, 'archives')).length, 6, 'doctor without --repair removes nothing');
  const repair = await aion(dir, 'doctor', '--repair');
  assert.equal(repair.code, 0, repair.stdout);
  assert.equal(repair.json.repaired.length, 2);
  assert.deepEqual(readdirSync(path.join(dir, 'archives')).sort(), Object.values(A).map((a) => `${a.version}.aion`).sort());

  const other = await make();
  assert.equal((await aion(other, 'start', 'hello', '--id', 'w9')).code, 0);
  assert.deepEqual(readdirSync(path.join(other, 'archives')).sort(), Object.values(A).map((a) => `${a.version}.aion`).sort(), 'a writable command removed them');
  assert.equal((await aion(other, 'doctor')).code, 0);
});

test('corrupt state: pin index, active markers and timers are rebuilt from the runs', async () => {
  const dir = await damaged(async (db, dump) => {
    const a1 = runOf(dump, 'a1');
    await db.del(`pin\x00approval\x00${a1.version}\x00run\x00a1`); // missing pin
    await db.put(`pin\x00hello\x00${A.hello_v1!.version}\x00run\x00ghost`, enc.encode('{"run_id":"x"}')); // stale pin
    await db.put(`pin\x00hello\x00${A.hello_v1!.version}\x00child\x00orphan`, enc.encode('{"recorded_by":"nobody"}')); // stale child pin
    await db.del('active\x00a2'); // missing marker
    await db.put('active\x00w1', enc.encode(`{"run_id":"${runOf(dump, 'w1').run_id}"}`)); // marker of a completed run
    for (const k of dump.keys()) if (k.startsWith('timer\x00')) await db.del(k); // missing timer
    await db.put(`timer\x00${'0'.repeat(15)}\x00w1\x00${'0'.repeat(10)}`, enc.encode('{}')); // stale timer
  });
  const found = checkInvariants(await dumpState(dir));
  assert.equal(found.length, 7, found.join('\n'));
  const unload = await aion(dir, 'unload', 'hello', A.hello_v1!.version);
  assert.equal(unload.code, 4, 'a stale pin still refuses unload (the safe reading) until repaired');
  const doctor = await aion(dir, 'doctor');
  assert.equal(doctor.code, 10);
  assert.deepEqual(
    doctorProblems(doctor).map((p) => p.kind).sort(),
    ['missing_active_marker', 'missing_pin', 'missing_timer', 'stale_active_marker', 'stale_pin', 'stale_pin', 'stale_timer'],
  );
  assert.ok(doctorProblems(doctor).every((p) => p.repairable));
  const repair = await aion(dir, 'doctor', '--repair');
  assert.equal(repair.code, 0);
  assert.equal(repair.json.ok, true);
  assert.equal(repair.json.repaired.length, 7);
  assert.deepEqual(checkInvariants(await dumpState(dir)), []);
  assert.equal((await aion(dir, 'doctor')).code, 0);
  assert.equal((await aion(dir, 'unload', 'hello', A.hello_v1!.version)).code, 0, 'unload works once the stale pins are gone');
  const serve = await aion(dir, 'serve', '--until-idle');
  assert.equal(serve.code, 0);
  assert.equal(runOf(await dumpState(dir), 's1').status, 'completed', 'the rebuilt timer fired');
});

test('corrupt state: doctor on a missing state directory', async () => {
  const r = await aion(path.join(root, 'nothing-here'), 'doctor');
  assert.equal(r.code, 0);
  assert.equal(r.json.ok, true);
});

test('corrupt state: summary', () => {
  report(stats);
  rmSync(root, { recursive: true, force: true });
});
