/** Publishing commands to the real broker and collecting the replies, for integration tests. */
import { unsettledTransfers } from '../../src/ledger/verify.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import { javaCompatiblePartitioner, type Kafka } from '../../src/kafka/client.ts';
import type { CommandReply } from '../../src/ledger/outcome.ts';
import { uniqueSuffix } from './stack.ts';

export type WireCommand = CommandInput;

export async function publish(
  kafka: Kafka,
  topic: string,
  commands: ReadonlyArray<WireCommand | { raw: string | Buffer | null; key: string; partition?: number; headers?: Record<string, string> }>,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, createPartitioner: javaCompatiblePartitioner });
  await producer.connect();
  try {
    const messages = commands.map((c) =>
      'raw' in c
        ? { key: c.key, value: c.raw, ...(c.partition === undefined ? {} : { partition: c.partition }), ...(c.headers ? { headers: c.headers } : {}) }
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
          throw new Error(`no reply after ${timeoutMs} ms for ${missing.length} command(s), e.g. ${missing.slice(0, 3).join(', ')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return new Map(ids.map((id) => [id, replies.get(id)![0]!]));
    },
    stop: () => consumer.disconnect(),
  };
}

/** The current balance of a user, straight from the database, in minor units. */
export async function balancesOf(pool: import('pg').Pool, userId: number): Promise<{ available: bigint; reserved: bigint; incoming: bigint }> {
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
    if (Date.now() > deadline) throw new Error(`transfers still unsettled after ${timeoutMs} ms: ${await unsettledMinor(pool)} minor units`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Applied transfers, applied settles, and transfers without exactly one settle (must be 0). */
export async function settlesPerTransfer(pool: import('pg').Pool): Promise<{ transfers: number; settles: number; unmatched: number }> {
  const { rows } = await pool.query<{ transfers: number; settles: number; unmatched: number }>(`
    SELECT (SELECT count(*)::int FROM commands WHERE type = 'transfer' AND status = 'applied') AS transfers,
           (SELECT count(*)::int FROM commands WHERE type = 'settle' AND status = 'applied') AS settles,
           (SELECT count(*)::int FROM commands t
              WHERE t.type = 'transfer' AND t.status = 'applied'
                AND NOT EXISTS (SELECT 1 FROM commands s WHERE s.id = '~settle:' || t.id AND s.status = 'applied')) AS unmatched`);
  return rows[0]!;
}
