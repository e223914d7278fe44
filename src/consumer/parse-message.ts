/**
 * Turns a raw command-topic message into a validated command, or into the reason it is not one.
 * Pure; the worker dead-letters the failures.
 */
import { commandFingerprint, COMMAND_ID_PATTERN, type Command, type CommandSchema } from '../commands/schema.ts';

export const DEAD_LETTER_CODES = {
  not_json: 'The message value is not valid JSON.',
  invalid_command: 'The message does not match the command schema.',
  empty_message: 'The message has no value.',
} as const;
export type DeadLetterCode = keyof typeof DEAD_LETTER_CODES;

/** The most bytes of a message value we try to parse; anything larger is invalid outright. */
export const MESSAGE_BYTES_MAX = 64 * 1024;

export type ParsedMessage =
  | { readonly ok: true; readonly command: Command; readonly fingerprint: string }
  | {
      readonly ok: false;
      readonly code: DeadLetterCode;
      readonly message: string;
      /** Set when the bad message still carried a usable id, so a rejection can be replied. */
      readonly commandId: string | null;
      readonly replyTo: string | null;
    };

export function parseCommandMessage(value: Buffer | null, schema: CommandSchema): ParsedMessage {
  if (!value || value.length === 0) return invalid('empty_message', DEAD_LETTER_CODES.empty_message, null);
  if (value.length > MESSAGE_BYTES_MAX) return invalid('invalid_command', `The message is larger than ${MESSAGE_BYTES_MAX} bytes.`, null);
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return invalid('not_json', DEAD_LETTER_CODES.not_json, null);
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, command: result.data, fingerprint: commandFingerprint(result.data) };
  const problems = result.error.issues.slice(0, 10).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return invalid('invalid_command', `${DEAD_LETTER_CODES.invalid_command} ${problems.join('; ')}`, json);
}

function invalid(code: DeadLetterCode, message: string, json: unknown): ParsedMessage {
  const record = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const commandId = typeof record.id === 'string' && COMMAND_ID_PATTERN.test(record.id) ? record.id : null;
  const replyTo = typeof record.reply_to === 'string' && /^[A-Za-z0-9._-]{1,249}$/.test(record.reply_to) ? record.reply_to : null;
  return { ok: false, code, message, commandId, replyTo };
}
