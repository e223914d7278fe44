/** Publishing commands to the real broker and collecting the replies, for integration tests. */
import { unsettledTransfers } from '../../src/ledger/verify.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import { PRODUCER_OPTIONS, type Kafka } from '../../src/kafka/client.ts';
import type { CommandReply } from '../../src/ledger/outcome.ts';
import type { Config } from '../../src/config.ts';
import { parseFrom, parseTo, replay } from '../../src/tools/replay.ts';
import { testLog, uniqueSuffix } from './stack.ts';

export type WireCommand = CommandInput;

export async function publish(
  kafka: Kafka,
  topic: string,
  commands: ReadonlyArray<
    | WireCommand
    | {
        raw: string | Buffer | null;
        key: string;
        partition?: number;
        headers?: Record<string, string>;
        /** The producer's CreateTime, in ms since the epoch, as a decimal string (any int64). */
        timestamp?: string;
      }
  >,
): Promise<void> {
  const producer = kafka.producer({ ...PRODUCER_OPTIONS, allowAutoTopicCreation: true });
  await producer.connect();
  try {
    const messages = commands.map((c) =>
      'raw' in c
        ? {
            key: c.key,
            value: c.raw,
            ...(c.partition === undefined ? {} : { partition: c.partition }),
            ...(c.headers ? { headers: c.headers } : {}),
            ...(c.timestamp === undefined ? {} : { timestamp: c.timestamp }),
          }
        : { key: String(c.user_id), value: JSON.stringify(c) },
    );
    for (let i = 0; i < messages.length; i += 5_000) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 5_000) });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface ReplyCollector {
  readonly replies: Map<string, CommandReply[]>;
  /** Waits until every id has at least one reply; returns the first reply of each. */
  waitFor(ids: readonly string[], timeoutMs?: number): Promise<Map<string, CommandReply>>;
  stop(): Promise<void>;
}

export async function collectReplies(kafka: Kafka, topic: string): Promise<ReplyCollector> {
  const replies = new Map<string, CommandReply[]>();
  const consumer = kafka.consumer({ groupId: `replies-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const reply = JSON.parse(String(message.value)) as CommandReply;
      const list = replies.get(reply.command_id) ?? [];
      list.push(reply);
      replies.set(reply.command_id, list);
    },
  });
  return {
    replies,
    async waitFor(ids, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (ids.some((id) => !replies.has(id))) {
        if (Date.now() > deadline) {
          const missing = ids.filter((id) => !replies.has(id));
          throw new Error(
            `no reply after ${timeoutMs} ms for ${missing.length} command(s), e.g. ${missing.slice(0, 3).join(', ')}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return new Map(ids.map((id) => [id, replies.get(id)![0]!]));
    },
    stop: () => consumer.disconnect(),
  };
}

/** The current balance of a user, straight from the database, in minor units. */
export async function balancesOf(
  pool: import('pg').Pool,
  userId: number,
): Promise<{ available: bigint; reserved: bigint; incoming: bigint }> {
  const { rows } = await pool.query<{ kind: string; balance: string }>(
    "SELECT kind, balance FROM accounts WHERE owner_id = $1 AND kind IN ('user_available', 'user_reserved', 'user_incoming')",
    [userId],
  );
  const of = (kind: string) => BigInt(rows.find((r) => r.kind === kind)?.balance ?? '0');
  return { available: of('user_available'), reserved: of('user_reserved'), incoming: of('user_incoming') };
}

/** How much transferred money still waits for its settle, over the whole database. */
export async function unsettledMinor(pool: import('pg').Pool): Promise<bigint> {
  return (await unsettledTransfers(pool)).minor;
}

/** Waits until every applied transfer has been settled on its recipient's partition. */
export async function waitForSettles(pool: import('pg').Pool, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await unsettledMinor(pool)) !== 0n) {
    if (Date.now() > deadline)
      throw new Error(`transfers still unsettled after ${timeoutMs} ms: ${await unsettledMinor(pool)} minor units`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Applied transfers, applied settles, and legs of applied transfers without their settle (must
 * be 0). A transfer to one recipient has one leg, settled by `~settle:<id>`; a split payment one
 * per recipient, settled by `~settle:<id>#<recipient>`. Settle ids are unique, so a leg has at
 * most one.
 */
export async function settlesPerTransfer(
  pool: import('pg').Pool,
): Promise<{ transfers: number; settles: number; unmatched: number }> {
  const { rows } = await pool.query<{ transfers: number; settles: number; unmatched: number }>(`
    SELECT (SELECT count(*)::int FROM commands WHERE type = 'transfer' AND status = 'applied') AS transfers,
           (SELECT count(*)::int FROM commands WHERE type = 'settle' AND status = 'applied') AS settles,
           (SELECT count(*)::int FROM commands t
              JOIN transactions leg ON leg.command_id = t.id AND leg.transaction_type = 'transfer_in'
              WHERE t.type = 'transfer' AND t.status = 'applied'
                AND NOT EXISTS (SELECT 1 FROM commands s
                                WHERE s.id IN ('~settle:' || t.id, '~settle:' || t.id || '#' || leg.user_id)
                                  AND s.status = 'applied')) AS unmatched`);
  return rows[0]!;
}

/**
 * Waits, at most `timeoutMs`, until every id is decided; returns the ids still missing (none,
 * normally). A loss then fails an assertion that names the commands, not a timeout.
 */
export async function missingAfter(
  pool: import('pg').Pool,
  ids: readonly string[],
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let missing: string[] = [...ids];
  while (missing.length > 0) {
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM commands WHERE id = ANY($1::text[])', [missing]);
    const found = new Set(rows.map((r) => r.id));
    missing = missing.filter((id) => !found.has(id));
    if (missing.length === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return missing;
}

/**
 * Commands whose effect is not the one their type makes exactly once: postings and history rows
 * are counted per command id, which the commands table cannot show (its key is that id).
 */
export async function effectsOutOfShape(
  pool: import('pg').Pool,
): Promise<Array<{ id: string; type: string; status: string; postings: number; history: number }>> {
  const { rows } = await pool.query(`
    SELECT c.id, c.type, c.status, coalesce(p.n, 0) AS postings, coalesce(t.n, 0) AS history
    FROM commands c
    LEFT JOIN (SELECT command_id, count(*)::int AS n FROM postings GROUP BY command_id) p ON p.command_id = c.id
    LEFT JOIN (SELECT command_id, count(*)::int AS n FROM transactions GROUP BY command_id) t ON t.command_id = c.id
    WHERE CASE
      WHEN c.status = 'rejected' THEN coalesce(p.n, 0) <> 0 OR coalesce(t.n, 0) <> 0
      WHEN c.type IN ('deposit', 'withdraw', 'reserve', 'release') THEN p.n IS DISTINCT FROM 1 OR t.n IS DISTINCT FROM 1
      WHEN c.type = 'capture' THEN coalesce(p.n, 0) NOT IN (1, 2) OR coalesce(t.n, 0) NOT IN (1, 2)
      WHEN c.type = 'transfer' THEN p.n IS DISTINCT FROM 1 OR t.n IS DISTINCT FROM 2
      WHEN c.type = 'settle' THEN p.n IS DISTINCT FROM 1 OR t.n IS NOT NULL
      WHEN c.type IN ('set_alert', 'remove_alert') THEN p.n IS NOT NULL OR t.n IS NOT NULL
      ELSE true
    END
    LIMIT 20`);
  return rows;
}

export interface ReadEvent {
  readonly value: string;
  readonly event: {
    event_id: string;
    user_id: number;
    sequence: number;
    type: string;
    command_id: string;
    balances: { available: string; reserved: string };
  };
}

/** Reads the events topic from the start until `enough` says so or `timeoutMs` passes; returns what it read. */
export async function readEvents(
  kafka: Kafka,
  topic: string,
  enough: (events: readonly ReadEvent[]) => boolean,
  timeoutMs: number,
): Promise<ReadEvent[]> {
  const events: ReadEvent[] = [];
  const consumer = kafka.consumer({ groupId: `events-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const value = String(message.value);
        events.push({ value, event: JSON.parse(value) });
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!enough(events) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    return events;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * The ids of every command on the command topic, read from the start until `enough` holds and
 * then for another second (copies that arrive late must be counted too), or until `timeoutMs`.
 */
export async function readCommandIds(
  kafka: Kafka,
  topic: string,
  enough: (ids: readonly string[]) => boolean,
  timeoutMs = 15_000,
): Promise<string[]> {
  const ids: string[] = [];
  const consumer = kafka.consumer({ groupId: `commands-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const id = (JSON.parse(String(message.value)) as { id?: unknown }).id;
          if (typeof id === 'string') ids.push(id);
        } catch {
          // not a command: records and bad messages are not counted
        }
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!enough(ids) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return ids;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * What is wrong with a run's balance events, judged against the applied commands per user:
 * copies of one event that differ, and users whose sequences are not exactly 1..applied.
 */
export function eventProblems(events: readonly ReadEvent[], appliedByUser: ReadonlyMap<number, number>): string[] {
  const problems: string[] = [];
  const copies = new Map<string, Set<string>>();
  for (const { value, event } of events) {
    const values = copies.get(event.event_id) ?? new Set();
    values.add(value);
    copies.set(event.event_id, values);
  }
  for (const [id, values] of copies) if (values.size > 1) problems.push(`${id}: ${values.size} different copies`);
  for (const [user, applied] of appliedByUser) {
    const sequences = [...new Set(events.filter((e) => e.event.user_id === user).map((e) => e.event.sequence))].sort(
      (a, b) => a - b,
    );
    if (sequences.length !== applied || sequences.some((s, i) => s !== i + 1))
      problems.push(`user ${user}: sequences ${sequences.length} for ${applied} applied commands`);
  }
  return problems;
}

/** Replays the whole command topic into `pool`'s database, as `npm run replay` does for a rebuild. */
export async function replayEverything(kafka: Kafka, config: Config, pool: import('pg').Pool): Promise<void> {
  await replay({
    kafka,
    pool,
    config,
    log: testLog,
    from: parseFrom('earliest'),
    to: parseTo('latest'),
    group: `replay-${uniqueSuffix()}`,
    dryRun: false,
  });
}
