/**
 * `npm run bench:balances-at`: how long GET /api/balances/?at= takes to compute for a user with
 * BENCH_AT_POSTINGS (1,000,000) postings, among BENCH_AT_NOISE_POSTINGS (1,000,000) postings of
 * BENCH_AT_NOISE_USERS (10,000) other users, spread over one year. The postings are written
 * set-based, straight into PostgreSQL, with the balances the consumer would record; the user also
 * has BENCH_AT_TRANSFERS (1,000) transfers received, half of them settled, so incoming is summed.
 *   at        BENCH_AT_QUERIES (200) instants drawn uniformly over the year, each answered by the
 *             read model's query (what the endpoint runs);
 *   sum       the same instants answered by summing the user's postings up to the instant (what
 *             the answer would cost without the recorded balances), for comparison and as the
 *             check: both must agree on every instant.
 * Prints p50/p99/max and writes bench/results/balances-at-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { balanceOfUserAt } from '../src/api/read-model.ts';
import { loadConfig } from '../src/config.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { freshDatabase } from './support.ts';

const settings = {
  postings: Number(process.env.BENCH_AT_POSTINGS ?? 1_000_000),
  noisePostings: Number(process.env.BENCH_AT_NOISE_POSTINGS ?? 1_000_000),
  noiseUsers: Number(process.env.BENCH_AT_NOISE_USERS ?? 10_000),
  transfers: Number(process.env.BENCH_AT_TRANSFERS ?? 1_000),
  queries: Number(process.env.BENCH_AT_QUERIES ?? 200),
};
const USER = 1;
const YEAR_START = Date.parse('2025-11-01T00:00:00Z');
const YEAR_MS = 365 * 24 * 3600 * 1000;

async function main() {
  const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const url = await freshDatabase(serverUrl, 'balance_bench_at');
  const pool = createPool(url, loadConfig({}, { secrets: 'unused' }).db, 'bench-at');
  try {
    const loadStarted = performance.now();
    await load(pool);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const instants = Array.from({ length: settings.queries }, (_, i) =>
      new Date(YEAR_START + Math.floor(((i * 7919) % settings.queries) * (YEAR_MS / settings.queries))).toISOString(),
    );
    const at = await timeEach(instants, (instant) => answerAt(pool, instant));
    const sum = await timeEach(instants, (instant) => answerBySum(pool, instant));
    const disagreements = instants.filter((_, i) => at.answers[i] !== sum.answers[i]);
    await report({ loadSeconds, recorded: at.stats, summed: sum.stats, disagreements });
  } finally {
    await pool.end();
  }
}

/** The user's and the other users' postings, with the balances after them, as the consumer writes them. */
async function load(pool: Pool) {
  await pool.query("INSERT INTO users (id, username, password_hash) VALUES ($1, 'bench-at', 'x')", [USER]);
  await pool.query(
    `INSERT INTO accounts (kind, owner_id)
     SELECT k, u FROM unnest(ARRAY['user_available', 'user_reserved', 'user_incoming']) AS k, generate_series(1, $1::int + 1) AS u`,
    [settings.noiseUsers],
  );
  // Two deposits of 1.00 for every withdrawal of 0.50: the balance only grows, never negative.
  const accountsSql = `(SELECT id FROM accounts WHERE kind = 'user_available' AND owner_id = $4)`;
  const external = `(SELECT id FROM accounts WHERE kind = 'external' AND stripe = 0)`;
  await pool.query(
    `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount, debit_balance_after, credit_balance_after, created_at)
     SELECT 'bench-' || $4 || '-' || i,
            CASE WHEN i % 3 = 0 THEN a ELSE e END, CASE WHEN i % 3 = 0 THEN e ELSE a END,
            CASE WHEN i % 3 = 0 THEN 50 ELSE 100 END,
            CASE WHEN i % 3 = 0 THEN sum(CASE WHEN i % 3 = 0 THEN -50 ELSE 100 END) OVER (ORDER BY i) END,
            CASE WHEN i % 3 = 0 THEN NULL ELSE sum(CASE WHEN i % 3 = 0 THEN -50 ELSE 100 END) OVER (ORDER BY i) END,
            $2::timestamptz + (i * ($3::float8 / $1::float8)) * interval '1 millisecond'
     FROM generate_series(1, $1::int) AS i, ${accountsSql} AS x(a), ${external} AS y(e)`,
    [settings.postings, new Date(YEAR_START).toISOString(), YEAR_MS, USER],
  );
  // Other users' deposits, interleaved in time with the user's.
  await pool.query(
    `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount, credit_balance_after, created_at)
     SELECT 'noise-' || i, e, a.id, 100, 100 * row_number() OVER (PARTITION BY a.id ORDER BY i),
            $2::timestamptz + (i * ($3::float8 / $1::float8)) * interval '1 millisecond'
     FROM generate_series(1, $1::int) AS i
     JOIN accounts a ON a.kind = 'user_available' AND a.owner_id = 2 + (i % $4::int), ${external} AS y(e)`,
    [settings.noisePostings, new Date(YEAR_START).toISOString(), YEAR_MS, settings.noiseUsers],
  );
  // Transfers received from user 2 into the user's incoming, every other one settled an hour
  // later. The settles here pay out to the external account, not to available, so that the
  // recorded available balances above stay exact; what matters is incoming's sum.
  await pool.query(
    `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount, created_at)
     SELECT 't-' || i, s.id, inc.id, 300, $2::timestamptz + (i * ($3::float8 / $1::float8)) * interval '1 millisecond'
     FROM generate_series(1, $1::int) AS i,
       (SELECT id FROM accounts WHERE kind = 'user_available' AND owner_id = 2) s,
       (SELECT id FROM accounts WHERE kind = 'user_incoming' AND owner_id = $4) inc
     UNION ALL
     SELECT '~settle:t-' || i, inc.id, av.id, 300, $2::timestamptz + (i * ($3::float8 / $1::float8)) * interval '1 millisecond' + interval '1 hour'
     FROM generate_series(2, $1::int, 2) AS i,
       (SELECT id FROM accounts WHERE kind = 'user_incoming' AND owner_id = $4) inc,
       (SELECT id FROM accounts WHERE kind = 'external' AND stripe = 0) av`,
    [settings.transfers, new Date(YEAR_START).toISOString(), YEAR_MS, USER],
  );
  await pool.query('ANALYZE postings; ANALYZE accounts');
}

async function answerAt(pool: Pool, instant: string): Promise<string> {
  const answer = await balanceOfUserAt(pool, USER, instant);
  if (typeof answer === 'string') throw new Error(`no balance at ${instant}: ${answer}`);
  return `${answer.available}/${answer.incoming}`;
}

/** The same answer, by summing every posting of the user's available and incoming accounts up to the instant. */
async function answerBySum(pool: Pool, instant: string): Promise<string> {
  const { rows } = await pool.query<{ available: string; incoming: string }>(
    `SELECT to_char(coalesce(sum(CASE WHEN a.kind = 'user_available' THEN m.delta END), 0) / 100.0, 'FM999999999990.00') AS available,
            to_char(coalesce(sum(CASE WHEN a.kind = 'user_incoming' THEN m.delta END), 0) / 100.0, 'FM999999999990.00') AS incoming
     FROM accounts a
     JOIN LATERAL (
       SELECT amount AS delta FROM postings WHERE credit_account_id = a.id AND created_at <= $2::timestamptz
       UNION ALL
       SELECT -amount FROM postings WHERE debit_account_id = a.id AND created_at <= $2::timestamptz
     ) m ON true
     WHERE a.owner_id = $1 AND a.kind IN ('user_available', 'user_incoming')`,
    [USER, instant],
  );
  return `${rows[0]!.available}/${rows[0]!.incoming}`;
}

async function timeEach(instants: readonly string[], answer: (instant: string) => Promise<string>) {
  const answers: string[] = [];
  const ms: number[] = [];
  for (const instant of instants) {
    const started = performance.now();
    answers.push(await answer(instant));
    ms.push(performance.now() - started);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2));
  return { answers, stats: { queries: ms.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) } };
}

async function report(results: {
  loadSeconds: number;
  recorded: { queries: number; p50Ms: number; p99Ms: number; maxMs: number };
  summed: { queries: number; p50Ms: number; p99Ms: number; maxMs: number };
  disagreements: string[];
}) {
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version };
  console.log(
    `\nuser with ${settings.postings} postings among ${settings.noisePostings} of ${settings.noiseUsers} others (loaded in ${results.loadSeconds.toFixed(1)} s)`,
  );
  console.log('answer                       queries   p50 ms   p99 ms   max ms');
  for (const [name, s] of [
    ['at (recorded balances)', results.recorded],
    ['sum of postings', results.summed],
  ] as const)
    console.log(
      `${name.padEnd(27)} ${String(s.queries).padStart(8)} ${String(s.p50Ms).padStart(8)} ${String(s.p99Ms).padStart(8)} ${String(s.maxMs).padStart(8)}`,
    );
  console.log(
    results.disagreements.length === 0
      ? 'both answers agree on every instant'
      : `DISAGREE on ${results.disagreements.length}`,
  );
  console.log(`machine: ${machine.cpus} cores, ${machine.cpuModel}`);
  const at = new Date().toISOString();
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/balances-at-${at.replaceAll(':', '-')}.json`;
  await writeFile(file, JSON.stringify({ at, machine, settings, ...results }, null, 2));
  console.log(`written: ${file}`);
  if (results.disagreements.length > 0) process.exitCode = 1;
}

await main();
