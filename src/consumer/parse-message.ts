/**
 * Turns a raw command-topic message into a validated command, or into the reason it is not one.
 * Pure; the pipeline dead-letters the failures.
 */
import { commandFingerprint, COMMAND_ID_PATTERN, type Command, type CommandSchema } from '../commands/schema.ts';
import { inexactNumberProblem } from '../commands/json-numbers.ts';
import { DEFAULT_REPLY_TOPIC_POLICY, replyTopicProblem, type ReplyTopicPolicy } from '../commands/reply-topics.ts';

export type ParseFailureCode = 'not_json' | 'invalid_command' | 'empty_message';

/** The most bytes of a message value we try to parse; anything larger is invalid outright. */
export const MESSAGE_BYTES_MAX = 64 * 1024;
/** Schema problems named in a rejection; the rest are counted, not listed. */
const PROBLEMS_LISTED_MAX = 10;

export type ParsedMessage =
  | { readonly ok: true; readonly command: Command; readonly fingerprint: string }
  | {
      readonly ok: false;
      readonly code: ParseFailureCode;
      readonly message: string;
      /** Set when the bad message still carried a usable id, so a rejection can be replied. */
      readonly commandId: string | null;
      /** Set only when the bad message named a reply topic the policy allows. */
      readonly replyTo: string | null;
    };

/** 9999-12-31T23:59:59.999Z: the last instant PostgreSQL's timestamptz, JSON and ISO 8601 agree on. */
const MESSAGE_TIME_MS_MAX = 253_402_300_799_999;

/**
 * A message's Kafka timestamp as ms since the epoch, or null when it names no instant we can
 * write down: -1 (none), anything negative, past year 9999 (Kafka 4 accepts any int64 CreateTime
 * by default), or not a number at all. It is information from the producer, never a decision:
 * the caller falls back to its own clock.
 */
export function messageTimeMs(timestamp: string | undefined | null): number | null {
  if (typeof timestamp !== 'string' || !/^\d{1,16}$/.test(timestamp)) return null;
  const ms = Number(timestamp);
  return ms <= MESSAGE_TIME_MS_MAX ? ms : null;
}

export function parseCommandMessage(
  value: Buffer | null,
  schema: CommandSchema,
  replyTopics: ReplyTopicPolicy = DEFAULT_REPLY_TOPIC_POLICY,
): ParsedMessage {
  if (!value || value.length === 0) return invalid('empty_message', 'The message has no value.', null, replyTopics);
  if (value.length > MESSAGE_BYTES_MAX)
    return invalid('invalid_command', `The message is larger than ${MESSAGE_BYTES_MAX} bytes.`, null, replyTopics);
  const text = value.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return invalid('not_json', 'The message value is not valid JSON.', null, replyTopics);
  }
  // Checked on the source text: after the parse, 10.0000000000000001 is already 10.
  const inexact = inexactNumberProblem(text);
  if (inexact !== null)
    return invalid('invalid_command', `The message has an inexact number. ${inexact}`, json, replyTopics);
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, command: result.data, fingerprint: commandFingerprint(result.data) };
  const issues = result.error.issues;
  const problems = issues
    .slice(0, PROBLEMS_LISTED_MAX)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  const more = issues.length > PROBLEMS_LISTED_MAX ? ` (and ${issues.length - PROBLEMS_LISTED_MAX} more)` : '';
  return invalid(
    'invalid_command',
    `The message does not match the command schema. ${problems.join('; ')}${more}`,
    json,
    replyTopics,
  );
}

function invalid(code: ParseFailureCode, message: string, json: unknown, replyTopics: ReplyTopicPolicy): ParsedMessage {
  const record = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const commandId = typeof record.id === 'string' && COMMAND_ID_PATTERN.test(record.id) ? record.id : null;
  const replyTo =
    typeof record.reply_to === 'string' && replyTopicProblem(record.reply_to, replyTopics) === null
      ? record.reply_to
      : null;
  return { ok: false, code, message, commandId, replyTo };
}
