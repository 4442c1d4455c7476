// The PostgreSQL server of the tests: the one at 127.0.0.1:5432 when it answers (or
// $AION_TEST_PG_URL), else one started here with the machine's pg_ctl as the `postgres` user
// (never as root), else none — and the reason, which the tests print when they skip.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export type PgServer = { url: string } | { skip: string };

async function answers(url: string): Promise<string | undefined> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return (error as Error).message || String((error as { code?: string }).code);
  } finally {
    await client.end().catch(() => {});
  }
}

let found: Promise<PgServer> | undefined;

export function pgServer(): Promise<PgServer> {
  found ??= (async () => {
    const url = process.env.AION_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const why = await answers(url);
    if (why === undefined) return { url };
    // Start our own: initdb + pg_ctl as the postgres user, on a port of our own.
    const bin = spawnSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1'], { encoding: 'utf8' }).stdout.trim();
    if (!bin) return { skip: `no PostgreSQL at ${url} (${why}) and no pg_ctl on this machine` };
    const dir = mkdtempSync(path.join(tmpdir(), 'aion-pg-'));
    chmodSync(dir, 0o777);
    const port = 55432;
    const as = (cmd: string) => spawnSync('runuser', ['-u', 'postgres', '--', 'sh', '-c', cmd], { encoding: 'utf8', timeout: 60_000 });
    const init = as(`${bin}/initdb -D ${dir}/data -A trust -U postgres >/dev/null && ${bin}/pg_ctl -D ${dir}/data -o "-p ${port} -k ${dir}" -l ${dir}/log -w start >/dev/null && ${bin}/createdb -h 127.0.0.1 -p ${port} -U postgres test`);
    if (init.status !== 0) return { skip: `no PostgreSQL at ${url} (${why}); starting one with pg_ctl failed: ${init.stderr.trim().slice(0, 300)}` };
    const own = `postgres://postgres@127.0.0.1:${port}/test`;
    process.on('exit', () => void as(`${bin}/pg_ctl -D ${dir}/data -m fast stop >/dev/null`));
    const still = await answers(own);
    return still === undefined ? { url: own } : { skip: `the PostgreSQL started with pg_ctl does not answer: ${still}` };
  })();
  return found;
}

/** A fresh schema name for one test (dropped by dropSchema). */
export function freshSchema(): string {
  return `aion_t_${randomBytes(6).toString('hex')}`;
}

export function withSchema(url: string, schema: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`;
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
