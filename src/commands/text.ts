/**
 * Text that reaches PostgreSQL, Kafka headers and logs. PostgreSQL refuses the NUL character in
 * `text` (SQLSTATE 22021), and a command it refuses used to halt its whole partition; the other
 * C0 control characters and lone UTF-16 surrogates are refused too, because they corrupt logs
 * and CSV, or are silently rewritten to U+FFFD on the way to the database (so the stored text
 * would differ from the text the fingerprint was taken of). Tab and newline stay allowed.
 */
import { z } from 'zod';

/** C0 controls except tab (0x09) and line feed (0x0A); DEL is harmless and allowed. */
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B-\u001F]/;

export type TextProblem = 'control_character' | 'malformed_unicode' | 'too_long' | 'too_many_bytes';

/** Why `text` cannot be stored, or null when it can. */
export function textProblem(text: string, limits: { charsMax: number; bytesMax: number }): TextProblem | null {
  if (FORBIDDEN_CONTROL.test(text)) return 'control_character';
  if (!text.isWellFormed()) return 'malformed_unicode';
  // Characters as PostgreSQL counts them (code points), not UTF-16 units.
  if (countCodePoints(text, limits.charsMax) > limits.charsMax) return 'too_long';
  if (Buffer.byteLength(text, 'utf8') > limits.bytesMax) return 'too_many_bytes';
  return null;
}

function countCodePoints(text: string, stopAfter: number): number {
  if (text.length <= stopAfter) return text.length;
  let count = 0;
  for (const _ of text) if (++count > stopAfter) break;
  return count;
}

const MESSAGES: Record<TextProblem, (limits: { charsMax: number; bytesMax: number }) => string> = {
  control_character: () =>
    'must not contain control characters (NUL, escape and the like; tab and newline are allowed)',
  malformed_unicode: () => 'must be well-formed Unicode (no lone surrogates)',
  too_long: (l) => `must be at most ${l.charsMax} characters`,
  too_many_bytes: (l) => `must be at most ${l.bytesMax} bytes in UTF-8`,
};

/** A zod string that PostgreSQL can store as given, bounded in characters and in bytes. */
export function storableText(limits: { charsMax: number; bytesMax: number; charsMin?: number }) {
  return z
    .string()
    .min(limits.charsMin ?? 0)
    .superRefine((text, ctx) => {
      const problem = textProblem(text, limits);
      if (problem) ctx.addIssue({ code: 'custom', message: MESSAGES[problem](limits) });
    });
}
