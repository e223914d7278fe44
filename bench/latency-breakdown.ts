/**
 * Where the time of one synchronous request goes, stage by stage, on an otherwise idle stack:
 * sends BENCH_BREAKDOWN_REQUESTS deposits one after another with their own Idempotency-Keys,
 * then joins four clocks of the same machine:
 *   sent          when this process sent the HTTP request;
 *   published     the command message's Kafka timestamp (set by the gateway's producer);
 *   applying      the `commands.created_at` of the row (PostgreSQL's now(): the consumer's
 *                 transaction start);
 *   replied       the reply message's Kafka timestamp (set by the consumer's producer);
 *   answered      when this process had the HTTP answer.
 */
import { httpScopedId, parseHttpScopedId } from '../src/commands/schema.ts';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createKafka } from '../src/kafka/client.ts';
import type { Logger } from '../src/log.ts';

export interface BreakdownOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly databaseUrl: string;
  readonly brokers: string[];
  readonly topics: { readonly commands: string; readonly replies: string };
  /** The user id of the token's account: the gateway scopes keys to it. */
  readonly callerId: number;
  readonly requests: number;
  readonly log: Logger;
}

export type StageMs = Record<
  'sentToPublished' | 'publishedToApplying' | 'applyingToReplied' | 'repliedToAnswered' | 'total',
  { p50: number; p90: number }
>;

/** How long the stamps may take to show up on the topics once the requests are done. */
const STAMPS_WAIT_MS = 30_000;

export async function measureBreakdown(options: BreakdownOptions): Promise<StageMs> {
  const sent = new Map<string, number>();
  const answered = new Map<string, number>();
  for (let i = 0; i < options.requests; i += 1) {
    const id = `breakdown-${randomUUID()}`;
    sent.set(id, Date.now());
    const response = await fetch(`${options.baseUrl}/api/add_funds/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json', 'idempotency-key': id },
      body: JSON.stringify({ user_id: 1 + (i % 50), amount: '1.00' }),
    });
    await response.text();
    answered.set(id, Date.now());
  }
  const ids = [...sent.keys()];
  // The gateway scopes each key to its caller: the command's id is ~http:<caller>:<key>.
  const scoped = (id: string) => httpScopedId(options.callerId, id);
  const applying = unscope(await transactionStarts(options.databaseUrl, ids.map(scoped)));
  const published = await messageTimes(options, options.topics.commands, ids, (value, _key) =>
    unscopedId((JSON.parse(value) as { id: string }).id),
  );
  // Replies are keyed by the gateway's reply key (REPLY_ROUTING), so the command id is read from the value.
  const replied = await messageTimes(options, options.topics.replies, ids, (value) => {
    try {
      return unscopedId((JSON.parse(value) as { command_id: string }).command_id);
    } catch {
      return '';
    }
  });
  return {
    sentToPublished: stage(ids, sent, published),
    publishedToApplying: stage(ids, published, applying),
    applyingToReplied: stage(ids, applying, replied),
    repliedToAnswered: stage(ids, replied, answered),
    total: stage(ids, sent, answered),
  };
}

function unscopedId(id: string): string {
  return parseHttpScopedId(id)?.key ?? id;
}

function unscope(times: Map<string, number>): Map<string, number> {
  return new Map([...times].map(([id, at]) => [unscopedId(id), at]));
}

async function transactionStarts(url: string, ids: string[]): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; created_at: Date }>(
      'SELECT id, created_at FROM commands WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.map((row) => [row.id, row.created_at.getTime()]));
  } finally {
    await client.end();
  }
}

async function messageTimes(
  options: BreakdownOptions,
  topic: string,
  ids: string[],
  idOf: (value: string, key: string) => string,
): Promise<Map<string, number>> {
  const wanted = new Set(ids);
  const times = new Map<string, number>();
  const consumer = createKafka({ brokers: options.brokers, clientId: 'bench-breakdown', log: options.log }).consumer({
    groupId: `bench-breakdown-${randomUUID()}`,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const id = idOf(String(message.value), String(message.key));
        if (wanted.has(id)) times.set(id, Number(message.timestamp));
      },
    });
    const deadline = Date.now() + STAMPS_WAIT_MS;
    while (times.size < ids.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    return times;
  } finally {
    await consumer.disconnect();
  }
}

function stage(ids: string[], from: Map<string, number>, to: Map<string, number>): { p50: number; p90: number } {
  const spans = ids
    .filter((id) => from.has(id) && to.has(id))
    .map((id) => to.get(id)! - from.get(id)!)
    .sort((a, b) => a - b);
  if (spans.length === 0) return { p50: Number.NaN, p90: Number.NaN };
  return { p50: spans[Math.floor(spans.length / 2)]!, p90: spans[Math.floor(spans.length * 0.9)]! };
}
