/**
 * The bulk pass of `npm run bench:http`: deposits over BENCH_USERS users, sent as bulks of a
 * given size to POST /api/commands/bulk by BENCH_BULK_CLIENTS clients for BENCH_BULK_SECONDS,
 * each client waiting for its bulk's answer (every item decided, or 202 after REPLY_WAIT_MS).
 * The rate counts commands decided, from the first send until the last is in the database.
 */
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';

export interface BulkPassResult {
  readonly bulkSize: number;
  readonly bulks: number;
  readonly commands: number;
  readonly seconds: number;
  readonly commandsPerSecond: number;
  readonly non200: number;
}

export async function bulkPass(options: {
  port: number;
  token: string;
  users: number;
  bulkSize: number;
  clients: number;
  seconds: number;
  databaseUrl: string;
  keyPrefix: string;
}): Promise<BulkPassResult> {
  let sequence = 0;
  let bulks = 0;
  let non200 = 0;
  const started = Date.now();
  const deadline = started + options.seconds * 1_000;
  const client = async () => {
    while (Date.now() < deadline) {
      const commands = Array.from({ length: options.bulkSize }, () => {
        sequence += 1;
        return {
          type: 'deposit',
          idempotency_key: `${options.keyPrefix}-${sequence}`,
          user_id: 1 + (sequence % options.users),
          amount: '1.00',
        };
      });
      const response = await fetch(`http://127.0.0.1:${options.port}/api/commands/bulk`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ commands }),
      });
      await response.arrayBuffer();
      bulks += 1;
      if (response.status !== 200) non200 += 1;
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const decided = await waitForPrefix(options.databaseUrl, options.keyPrefix, sequence);
  const seconds = (Date.now() - started) / 1_000;
  return {
    bulkSize: options.bulkSize,
    bulks,
    commands: decided,
    seconds: Number(seconds.toFixed(2)),
    commandsPerSecond: Math.round(decided / seconds),
    non200,
  };
}

/** Waits (at most 120 s) until every command sent in the pass is decided; returns how many are. */
async function waitForPrefix(url: string, prefix: string, expected: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM commands WHERE id LIKE '~http:%:' || $1 || '-%'",
        [prefix],
      );
      if (rows[0]!.n >= expected || Date.now() > deadline) return rows[0]!.n;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await client.end();
  }
}

/**
 * The mixed pass of the newest `npm run bench:consumer` result in bench/results, if it is at most
 * `ageMaxMs` old: the consumer's own rate, which the bulk pass is compared with.
 */
export async function recentConsumerRate(
  ageMaxMs: number,
): Promise<{ file: string; commandsPerSecond: number } | null> {
  const files = (await readdir('bench/results').catch(() => [] as string[]))
    .filter((f) => f.startsWith('consumer-') && f.endsWith('.json'))
    .sort();
  const newest = files.at(-1);
  if (!newest) return null;
  const result = JSON.parse(await readFile(`bench/results/${newest}`, 'utf8')) as {
    at: string;
    mixed: { commandsPerSecond: number };
  };
  if (Date.now() - Date.parse(result.at) > ageMaxMs) return null;
  return { file: newest, commandsPerSecond: result.mixed.commandsPerSecond };
}
