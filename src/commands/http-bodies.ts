/**
 * The HTTP bodies whose shape is not the command's own (a transfer names its sender `sender_id`;
 * an alert is removed by the caller's key), for the catalog's endpoints.
 */
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { Caller, CommandFields } from './catalog-spec.ts';
import { entityIdSchema, transferRecipientsSchema } from './fields.ts';
import { httpScopedId } from './ids.ts';

/** A transfer's body over HTTP: the sender is `sender_id`, and the sender cannot be a recipient. */
export function transferBody(f: CommandFields) {
  return z
    .object({
      sender_id: entityIdSchema,
      recipient_id: entityIdSchema.optional(),
      amount: f.amount.optional(),
      recipients: transferRecipientsSchema(f.amount, f.recipientsMax).optional(),
      comment: f.comment,
    })
    .superRefine((body, ctx) => {
      const single = body.recipient_id !== undefined || body.amount !== undefined;
      if (single === (body.recipients !== undefined))
        ctx.addIssue({
          code: 'custom',
          path: ['recipients'],
          message: 'give either recipient_id and amount, or recipients (a split payment)',
        });
      else if (single && (body.recipient_id === undefined || body.amount === undefined))
        ctx.addIssue({
          code: 'custom',
          path: [body.recipient_id === undefined ? 'recipient_id' : 'amount'],
          message: 'is required',
        });
      const recipients = body.recipients?.map((leg) => leg.recipient_id) ?? [body.recipient_id];
      if (recipients.includes(body.sender_id))
        ctx.addIssue({
          code: 'custom',
          path: [body.recipients ? 'recipients' : 'recipient_id'],
          message: 'must differ from sender_id',
        });
    });
}

/**
 * An alert's id as the caller names it: their own Idempotency-Key stands for the id the gateway
 * gave their command. Services and admins may also name another caller's alert by its full id
 * (`~http:...`, as they see it listed); a user only their own, so they can neither remove a
 * merchant's alert nor learn, from 201 against 409, whether a guessed key exists.
 */
export function alertIdOf(shown: string, caller: Caller): string {
  if (!shown.startsWith('~')) return httpScopedId(caller.userId, shown);
  if (caller.role === 'user')
    throw new ApiError('validation_failed', 'Invalid alert_id.', [
      { field: 'alert_id', message: 'must be the Idempotency-Key you set the alert with' },
    ]);
  return shown;
}
