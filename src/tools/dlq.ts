/**
 * The dead-letter topic for operators: list what is there and why, and re-drive messages
 * (as they were, or corrected) back to the command topic. A re-driven command keeps its id, so
 * re-driving it twice still has one effect.
 */
import { randomUUID } from 'node:crypto';
import { UsageError } from '../cli.ts';
import { INTERNAL_PROOF_HEADER } from '../commands/internal-proof.ts';
import { PRODUCER_OPTIONS, type Kafka } from '../kafka/client.ts';

export interface DeadLetter {
  /** `<partition>:<offset>` in the dead-letter topic: what `redrive --id` takes. */
  readonly id: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** The most dead letters read in one call. */
export const DEAD_LETTERS_READ_MAX = 10_000;

/** Reads the dead-letter topic from its start up to its current end, at most `limit` messages. */
export async function readDeadLetters(kafka: Kafka, topic: string, limit: number): Promise<DeadLetter[]> {
  const wanted = Math.min(limit, DEAD_LETTERS_READ_MAX);
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, { low: BigInt(p.low), high: BigInt(p.high) }]),
  );
  await admin.disconnect();
  const pending = new Set([...ends].filter(([, r]) => r.high > r.low).map(([p]) => p));
  const letters: DeadLetter[] = [];
  if (pending.size === 0) return letters;
  const consumer = kafka.consumer({ groupId: `balance-dlq-reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (letters.length < wanted) letters.push(toDeadLetter(partition, message));
        if (BigInt(message.offset) + 1n >= ends.get(partition)!.high) pending.delete(partition);
        if (pending.size === 0 || letters.length >= wanted) resolve();
      },
    });
  });
  await consumer.disconnect();
  return letters.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}

function toDeadLetter(
  partition: number,
  message: { offset: string; key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown> },
): DeadLetter {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {}))
    if (value !== undefined) headers[name] = String(value);
  return { id: `${partition}:${message.offset}`, key: message.key?.toString() ?? null, value: message.value, headers };
}

/**
 * Publishes dead letters back to the command topic, keyed as before. `replacement` replaces the
 * value of a single message, for a corrected command.
 */
export async function redrive(
  kafka: Kafka,
  commandTopic: string,
  letters: readonly DeadLetter[],
  replacement?: string,
): Promise<number> {
  if (replacement !== undefined && letters.length !== 1)
    throw new UsageError('a corrected --value goes with exactly one --id');
  const producer = kafka.producer(PRODUCER_OPTIONS);
  await producer.connect();
  try {
    await producer.send({
      topic: commandTopic,
      acks: -1,
      messages: letters.map((letter) => ({
        key: keyFor(letter, replacement),
        value: replacement ?? letter.value,
        headers: redrivenHeaders(letter, replacement),
      })),
    });
    return letters.length;
  } finally {
    await producer.disconnect();
  }
}

/**
 * Marks where the message came from. A settle re-driven as it was keeps the consumer's proof
 * (the proof covers the command, so it is only valid for the same bytes); a corrected value never does.
 */
function redrivenHeaders(letter: DeadLetter, replacement: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'x-redriven-from': `dlq:${letter.id}` };
  const proof = letter.headers[INTERNAL_PROOF_HEADER];
  if (replacement === undefined && proof !== undefined) headers[INTERNAL_PROOF_HEADER] = proof;
  return headers;
}

/** A corrected command is keyed by its own user id, so it lands on its user's partition. */
function keyFor(letter: DeadLetter, replacement: string | undefined): string | null {
  if (replacement === undefined) return letter.key;
  try {
    const userId = (JSON.parse(replacement) as { user_id?: unknown }).user_id;
    return typeof userId === 'number' ? String(userId) : letter.key;
  } catch {
    return letter.key;
  }
}
