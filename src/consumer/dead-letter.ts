/**
 * Dead letters: a message the consumer moved aside, with why and where it came from in headers.
 * Everything in one is bounded, so a dead letter always fits in a Kafka message whatever the
 * producer sent: the value, the key and the copied headers each have a byte limit, and what was
 * cut is recorded in a header instead.
 */
import type { KafkaMessage } from '../kafka/client.ts';
import { MESSAGE_BYTES_MAX } from './parse-message.ts';

export const DEAD_LETTER_CODES = {
  not_json: 'The message value is not valid JSON.',
  invalid_command: 'The message does not match the command schema.',
  empty_message: 'The message has no value.',
  unprocessable: 'The command is valid, but the database refused it; it was recorded as rejected.',
  unrecorded: 'The database refused the command and its rejection; it was skipped without a record.',
  parked: 'An operator parked this offset; the command was not applied.',
} as const;
export type DeadLetterCode = keyof typeof DEAD_LETTER_CODES;

/**
 * No value longer than a command may be can ever become one, so cutting there loses nothing a
 * redrive could use.
 */
export const DEAD_LETTER_VALUE_BYTES_MAX = MESSAGE_BYTES_MAX;
/** A user-id key is a few bytes; a longer one is garbage and is dropped. */
export const DEAD_LETTER_KEY_BYTES_MAX = 1_024;
/** The producer's own headers that are copied, in total. */
export const DEAD_LETTER_COPIED_HEADER_BYTES_MAX = 16_384;
export const DEAD_LETTER_MESSAGE_CHARS_MAX = 1_000;

export interface DeadLetterReason {
  readonly code: DeadLetterCode;
  readonly message: string;
  /** The PostgreSQL error code, when the database refused the command. */
  readonly sqlState?: string | undefined;
}

export interface OutgoingMessage {
  readonly key: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Record<string, string | Buffer>;
  /** Set only for a message meant for one partition whatever its key (a limits record). */
  readonly partition?: number;
}

/** The dead letter of a message: its original key, value and headers (bounded), plus why and where from. */
export function deadLetterOf(
  message: KafkaMessage,
  source: { topic: string; partition: number },
  reason: DeadLetterReason,
): OutgoingMessage {
  const { copied, dropped } = copyHeaders(message.headers ?? {});
  const headers: Record<string, string | Buffer> = {
    ...copied,
    'x-error-code': reason.code,
    'x-error-message': reason.message.slice(0, DEAD_LETTER_MESSAGE_CHARS_MAX),
    'x-source-topic': source.topic,
    'x-source-partition': String(source.partition),
    'x-source-offset': message.offset,
    'x-dead-lettered-at': new Date().toISOString(),
  };
  if (reason.sqlState) headers['x-sqlstate'] = reason.sqlState;
  if (dropped > 0) headers['x-headers-dropped'] = String(dropped);
  let value = message.value;
  if (value && value.length > DEAD_LETTER_VALUE_BYTES_MAX) {
    headers['x-original-bytes'] = String(value.length);
    value = value.subarray(0, DEAD_LETTER_VALUE_BYTES_MAX);
  }
  let key = message.key;
  if (key && key.length > DEAD_LETTER_KEY_BYTES_MAX) {
    headers['x-original-key-bytes'] = String(key.length);
    key = null;
  }
  return { key, value, headers };
}

/** Headers this module writes; a producer's own copies of them are dropped, not trusted. */
const OWN_HEADERS = new Set([
  'x-sqlstate',
  'x-headers-dropped',
  'x-original-bytes',
  'x-original-key-bytes',
  'x-dead-lettered-at',
]);

function copyHeaders(headers: KafkaMessage['headers'] & object): {
  copied: Record<string, string | Buffer>;
  dropped: number;
} {
  const copied: Record<string, string | Buffer> = {};
  let bytes = 0;
  let dropped = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) continue;
    // Our own headers are set fresh below; a producer must not be able to fake them.
    if (name.startsWith('x-error-') || name.startsWith('x-source-') || OWN_HEADERS.has(name)) continue;
    const size = Buffer.byteLength(name) + (typeof value === 'string' ? Buffer.byteLength(value) : value.length);
    if (bytes + size > DEAD_LETTER_COPIED_HEADER_BYTES_MAX) {
      dropped += 1;
      continue;
    }
    bytes += size;
    copied[name] = value;
  }
  return { copied, dropped };
}

/** What a message costs in a produce request, near enough to keep batches under the broker's limit. */
export function messageBytes(message: OutgoingMessage): number {
  const size = (part: string | Buffer | null | undefined) =>
    part == null ? 0 : typeof part === 'string' ? Buffer.byteLength(part) : part.length;
  let bytes = 64 + size(message.key) + size(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += 8 + Buffer.byteLength(name) + size(value);
  return bytes;
}
