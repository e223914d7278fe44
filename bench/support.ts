/** What the benchmarks share: a fresh, migrated database per pass, and CPU time read from /proc. */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { ensureDatabase, quoteIdentifier } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPool } from '../src/db/pool.ts';

/** Drops `database` on the server of `serverUrl` if it exists, creates it again, migrates it. */
export async function freshDatabase(serverUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)} WITH (FORCE)`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  await ensureDatabase(url.toString());
  const pool = createPool(url.toString(), loadConfig({}, { secrets: 'unused' }).db, 'bench-migrate');
  await migrate(pool);
  await pool.end();
  return url.toString();
}

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** User + system CPU of a process in microseconds, from /proc/<pid>/stat (0 once it is gone). */
export function cpuMicros(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS_PER_S;
}

/** The postmaster of the server behind `url`, and every process it started (backends, writers). */
export async function postgresPids(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const dataDir = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
  await client.end();
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) throw new Error(`cannot read ${pidFile}: the benchmark needs the server's own machine`);
  const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const children = readdirSync('/proc')
    .filter((entry) => /^[0-9]+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
      } catch {
        return false;
      }
    });
  return [postmaster, ...children];
}
