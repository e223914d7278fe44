/**
 * What a command type is, in one place: its schema, its HTTP endpoint, who may send it, the
 * orders and accounts it touches, whether a freeze stops it, the event it makes, and what the
 * docs say of it. Every list of command types in the code, the docs and the database is derived
 * from this catalog (tests hold docs/commands.md, docs/security.md and the `commands_type_check`
 * constraint equal to it); only the decision itself (ledger/core.ts `decide`, an exhaustive switch
 * that fails the build for a type it does not decide) is written elsewhere.
 *
 * Adding a type: an entry here, its case in `decide` (and its SQL if it writes something new), a
 * migration widening `commands_type_check`, its tests, and `npm run docs`.
 */
import { z } from 'zod';
import { endpoint, type CommandSpec, type CommandFields } from './catalog-spec.ts';
import {
  alertDirectionSchema,
  commandIdSchema,
  entityIdSchema,
  expiresInSchema,
  externalRefSchema,
  freezeReasonSchema,
  legsFingerprint,
  oneRecipientOrLegs,
  transferRecipientsSchema,
} from './fields.ts';
import { alertIdOf, transferBody } from './http-bodies.ts';
import { ALERT_REFERENCE_PATTERN, EXPIRE_ID_PATTERN, SETTLE_ID_PATTERN } from './ids.ts';

const orderCommand = (f: CommandFields, type: string) => ({ ...f.base, type: z.literal(type), ...f.order });

/**
 * Money that crosses the boundary (deposits, withdrawals) may name the service it came through
 * and the payment provider's reference for it: what a statement is reconciled against.
 */
const externalFields = {
  service_id: entityIdSchema.optional(),
  external_ref: externalRefSchema.optional(),
};
const refNeedsService = (c: { service_id?: number; external_ref?: string }) =>
  c.external_ref === undefined || c.service_id !== undefined;
const REF_NEEDS_SERVICE = { path: ['service_id'], message: 'is required with external_ref' };
const externalFingerprint = (c: Readonly<Record<string, unknown>>) =>
  c.external_ref === undefined ? [] : [String(c.external_ref)];

export const COMMAND_CATALOG = {
  deposit: {
    origin: 'client',
    schema: (f) =>
      z
        .object({ ...f.base, type: z.literal('deposit'), amount: f.amount, comment: f.comment, ...externalFields })
        .refine(refNeedsService, REF_NEEDS_SERVICE),
    fingerprint: externalFingerprint,
    http: endpoint(
      '/api/add_funds/',
      'Deposit',
      (f) =>
        z
          .object({ user_id: entityIdSchema, amount: f.amount, comment: f.comment, ...externalFields })
          .refine(refNeedsService, REF_NEEDS_SERVICE),
      (b) => ({ type: 'deposit', ...b }),
    ),
    access: { user: 'grantable', service: 'services', action: 'deposit' },
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: 'amount',
    accounts: ['available', 'external'],
    eventType: 'deposit',
    movesMoney: true,
    docs: {
      fields: "`user_id`, `amount`; optionally `service_id` and `external_ref` (the provider's payment id)",
      effect:
        "credits the available balance; the first credit creates the account. With `service_id`, recorded for reconciliation against that service's statements",
      rejections:
        '`balance_limit_exceeded` (available + reserved would pass `BALANCE_MINOR_MAX`); `external_ref_reused` (the user already has a deposit or withdrawal of the service with this reference)',
    },
  },
  withdraw: {
    origin: 'client',
    schema: (f) =>
      z
        .object({ ...f.base, type: z.literal('withdraw'), amount: f.amount, comment: f.comment, ...externalFields })
        .refine(refNeedsService, REF_NEEDS_SERVICE),
    fingerprint: externalFingerprint,
    http: endpoint(
      '/api/withdraw_funds/',
      'Withdraw',
      (f) =>
        z
          .object({ user_id: entityIdSchema, amount: f.amount, comment: f.comment, ...externalFields })
          .refine(refNeedsService, REF_NEEDS_SERVICE),
      (b) => ({ type: 'withdraw', ...b }),
    ),
    access: { user: 'grantable', service: 'services', action: 'withdraw' },
    namesOrder: false,
    stoppedByFreeze: true,
    limitedAmount: 'amount',
    accounts: ['available', 'external'],
    eventType: 'withdraw',
    movesMoney: true,
    docs: {
      fields: "`user_id`, `amount`; optionally `service_id` and `external_ref` (the bank's payout id)",
      effect:
        "debits the available balance. With `service_id`, recorded for reconciliation against that service's statements",
      rejections: '`account_frozen`, then `insufficient_funds`, then `external_ref_reused`',
    },
  },
  reserve: {
    origin: 'client',
    schema: (f) =>
      z.object({
        ...orderCommand(f, 'reserve'),
        type: z.literal('reserve'),
        amount: f.amount,
        comment: f.comment,
        expires_in_s: expiresInSchema.optional(),
      }),
    http: endpoint(
      '/api/reserve_funds/',
      'Reserve funds for an order (optionally expiring: expires_in_s)',
      (f) =>
        z.object({
          user_id: entityIdSchema,
          ...f.order,
          amount: f.amount,
          comment: f.comment,
          expires_in_s: expiresInSchema.optional(),
        }),
      (b) => ({ type: 'reserve', ...b }),
    ),
    access: { user: 'grantable', service: 'services', action: 'reserve funds for an order' },
    namesOrder: true,
    stoppedByFreeze: true,
    limitedAmount: 'amount',
    accounts: ['available', 'reserved'],
    eventType: 'reserve',
    movesMoney: true,
    // Appended only when present, so the fingerprints of reserves without it stay as they were.
    fingerprint: (c) => (c.expires_in_s === undefined ? [] : [`expires_in_s=${c.expires_in_s}`]),
    docs: {
      fields:
        '`user_id`, `service_id`, `order_id`, `amount`, optional `expires_in_s` (integer, 1 to 2,678,400: 31 days)',
      effect:
        'moves the amount from available to a reservation for (user, service, order); with `expires_in_s`, the hold returns to available by itself that many seconds after the reserve is applied (below)',
      rejections: '`account_frozen`, `reservation_exists` (while one is open), then `insufficient_funds`',
    },
  },
  capture: {
    origin: 'client',
    schema: (f) =>
      z.object({ ...orderCommand(f, 'capture'), type: z.literal('capture'), amount: f.amount, comment: f.comment }),
    http: endpoint(
      '/api/deduct_funds/',
      'Revenue recognition: capture a reservation',
      (f) => z.object({ user_id: entityIdSchema, ...f.order, amount: f.amount, comment: f.comment }),
      (b) => ({ type: 'capture', ...b }),
    ),
    access: { user: 'grantable', service: 'services', action: 'capture a reservation (recognise revenue)' },
    namesOrder: true,
    stoppedByFreeze: false,
    // Bounded by its reservation, made under the limit of its day.
    limitedAmount: null,
    accounts: ['available', 'reserved', 'revenue'],
    eventType: 'capture',
    movesMoney: true,
    docs: {
      fields: '`user_id`, `service_id`, `order_id`, `amount`',
      effect:
        "revenue recognition: takes `amount` (up to the hold) into the service's revenue, returns the rest of the hold to available, closes the reservation",
      rejections:
        "`reservation_expired` (the order's hold expired), `reservation_not_found`, then `amount_exceeds_reservation`",
    },
  },
  release: {
    origin: 'client',
    schema: (f) => z.object({ ...orderCommand(f, 'release'), type: z.literal('release'), comment: f.comment }),
    http: endpoint(
      '/api/cancel_reservation/',
      'Cancel a reservation',
      (f) => z.object({ user_id: entityIdSchema, ...f.order, comment: f.comment }),
      (b) => ({ type: 'release', ...b }),
    ),
    access: { user: 'grantable', service: 'services', action: 'cancel a reservation' },
    namesOrder: true,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['available', 'reserved'],
    eventType: 'release',
    movesMoney: true,
    docs: {
      fields: '`user_id`, `service_id`, `order_id`',
      effect: 'cancels the reservation: the whole hold returns to available',
      rejections: '`reservation_expired`, then `reservation_not_found`',
    },
  },
  transfer: {
    origin: 'client',
    schema: (f) =>
      z
        .object({
          ...f.base,
          type: z.literal('transfer'),
          recipient_id: entityIdSchema.optional(),
          amount: f.amount.optional(),
          recipients: transferRecipientsSchema(f.amount, f.recipientsMax).optional(),
          comment: f.comment,
        })
        .superRefine(oneRecipientOrLegs)
        .meta({
          description:
            'Moves money from the sender (user_id) to one recipient (recipient_id, amount), or to several at once (recipients: a split payment, debited in one decision or not at all).',
        }),
    http: endpoint(
      '/api/transfer_funds/',
      'Transfer between users: to one recipient, or split over several (recipients) in one decision',
      transferBody,
      (b) => ({
        type: 'transfer',
        user_id: b.sender_id,
        ...(b.recipients === undefined
          ? { recipient_id: b.recipient_id!, amount: b.amount! }
          : { recipients: b.recipients }),
        ...(b.comment === undefined ? {} : { comment: b.comment }),
      }),
    ),
    access: { user: 'grantable', service: 'any', action: 'transfer' },
    namesOrder: false,
    stoppedByFreeze: true,
    limitedAmount: 'transfer_total',
    accounts: ['available', 'recipients_incoming'],
    eventType: 'transfer_out',
    movesMoney: true,
    fingerprint: legsFingerprint,
    docs: {
      fields:
        '`user_id` (sender), and either `recipient_id` and `amount`, or `recipients`: 1-100 distinct `{recipient_id, amount, comment?}` (a split payment; over HTTP at most `TRANSFER_RECIPIENTS_MAX`)',
      effect:
        "in one transaction, debits the sender's available balance the sum of the legs (or nothing) and credits each recipient's `incoming` balance (creating the account if needed) and both histories, a `transfer_out` and a `transfer_in` row per leg; the consumer then publishes a `settle` per leg (`~settle:<id>` for one recipient, `~settle:<id>#<recipient id>` per leg of a split payment). A recipient named twice is `invalid_command` (400 over HTTP); the amount limit applies to the sum",
      rejections: "`account_frozen` (the sender's), `same_account`, then `insufficient_funds`",
    },
  },
  settle: {
    origin: 'consumer',
    // Not bounded by AMOUNT_MINOR_MAX: the transfer was, and a limit lowered between the two
    // must not strand the money in incoming.
    schema: (f) =>
      z
        .object({
          id: z.string().regex(SETTLE_ID_PATTERN, 'must be ~settle: followed by the transfer id'),
          type: z.literal('settle'),
          user_id: entityIdSchema,
          amount: f.ceilingAmount,
        })
        .meta({
          description:
            "Published by the consumer after a transfer: moves the amount from the recipient's incoming to their available balance.",
        }),
    http: null,
    access: null,
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['incoming', 'available'],
    eventType: 'transfer_in',
    movesMoney: true,
    docs: {
      fields:
        '`id` = `~settle:<transfer id>` (or `~settle:<transfer id>#<recipient id>` for a leg of a split payment), `user_id` (recipient), `amount`',
      effect:
        "published by the consumer, keyed by the recipient, for every applied transfer: moves the amount from the recipient's incoming to their available balance. Accepted only with the consumer's proof in a header (below); producers cannot send it.",
      rejections: '—',
    },
  },
  expire: {
    origin: 'consumer',
    schema: (f) =>
      z
        .object({
          id: z.string().regex(EXPIRE_ID_PATTERN, 'must be ~expire: followed by the reserve command id'),
          type: z.literal('expire'),
          user_id: entityIdSchema,
          ...f.order,
        })
        .meta({
          description:
            'Published by the consumer once a hold passed its expires_in_s: returns the hold the reserve command (named by the id) opened, if it is still open.',
        }),
    http: null,
    access: null,
    namesOrder: true,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['available', 'reserved'],
    eventType: 'expire',
    movesMoney: true,
    docs: {
      fields: '`id` = `~expire:<reserve id>`, `user_id`, `service_id`, `order_id`',
      effect:
        "published by the consumer, keyed by the user, once a hold passed its expiry: returns the hold that reserve opened to available, writes an `expire` history row and closes the reservation as expired. Accepted only with the consumer's proof.",
      rejections: '`reservation_not_found` (the hold was captured or released first)',
    },
  },
  set_alert: {
    origin: 'client',
    schema: (f) =>
      z.object({ ...f.base, type: z.literal('set_alert'), direction: alertDirectionSchema, threshold: f.amount }).meta({
        description:
          "Registers a threshold alert on the user's available balance; its id is this command's id (docs/events.md).",
      }),
    http: endpoint(
      '/api/balance_alerts/',
      'Register a threshold alert on the available balance (below or above); its id is the command id',
      (f) =>
        z
          .object({ user_id: entityIdSchema, below: f.amount.optional(), above: f.amount.optional() })
          .refine((body) => (body.below === undefined) !== (body.above === undefined), {
            path: ['below'],
            message: 'give exactly one of below and above',
          }),
      (b) => ({
        type: 'set_alert',
        user_id: b.user_id,
        ...(b.below === undefined
          ? { direction: 'above', threshold: b.above! }
          : { direction: 'below', threshold: b.below }),
      }),
    ),
    access: { user: 'own', service: 'any', action: 'set a balance threshold alert' },
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: 'threshold',
    // Locked like a balance change: the alert starts from the balance, and its count is kept on this row.
    accounts: ['available'],
    eventType: null,
    movesMoney: false,
    fingerprint: (c) => [`direction=${c.direction}`, `threshold=${c.threshold}`],
    docs: {
      fields: '`user_id`, `direction` (`below` or `above`), `threshold` (an amount)',
      effect:
        "registers a threshold alert on the user's available balance; its id is this command's `id`. It moves no money, so it makes no balance event and leaves the version as it is; it fires `threshold_crossed` events (docs/events.md)",
      rejections: '`alert_limit_exceeded` (the user has `ALERTS_PER_USER_MAX` alerts)',
    },
  },
  remove_alert: {
    origin: 'client',
    schema: (f) =>
      z
        .object({ ...f.base, type: z.literal('remove_alert'), alert_id: commandIdSchema })
        .meta({ description: 'Removes the threshold alert that the command with id `alert_id` registered.' }),
    http: endpoint(
      '/api/balance_alerts/remove/',
      'Remove a threshold alert',
      () =>
        z.object({
          user_id: entityIdSchema,
          alert_id: z
            .string()
            .regex(
              ALERT_REFERENCE_PATTERN,
              'must be the Idempotency-Key the alert was set with, or an alert id as listed',
            ),
        }),
      (b, caller) => ({ type: 'remove_alert', user_id: b.user_id, alert_id: alertIdOf(b.alert_id, caller) }),
    ),
    access: { user: 'own', service: 'any', action: 'remove a balance threshold alert' },
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['available'],
    eventType: null,
    movesMoney: false,
    fingerprint: (c) => [`alert_id=${c.alert_id}`],
    docs: {
      fields: '`user_id`, `alert_id` (the id of the `set_alert` command)',
      effect: 'removes the alert; it fires no more',
      rejections: '`alert_not_found`',
    },
  },
  refund: {
    origin: 'client',
    schema: (f) =>
      z.object({ ...orderCommand(f, 'refund'), type: z.literal('refund'), amount: f.amount, comment: f.comment }).meta({
        description:
          "Gives back money of a captured order: from the service's revenue to the user's available balance. Refunds of an order add up to at most what was captured.",
      }),
    http: endpoint(
      '/api/refund_funds/',
      'Refund part or all of a captured order, from the service revenue back to the user',
      (f) => z.object({ user_id: entityIdSchema, ...f.order, amount: f.amount, comment: f.comment }),
      (b) => ({ type: 'refund', ...b }),
    ),
    access: { user: 'none', service: 'services', action: 'refund a captured order' },
    namesOrder: true,
    stoppedByFreeze: false,
    // Bounded by what its order's captures took.
    limitedAmount: null,
    accounts: ['available', 'revenue'],
    eventType: 'refund',
    movesMoney: true,
    docs: {
      fields: '`user_id`, `service_id`, `order_id`, `amount`',
      effect:
        "gives back part or all of a captured order: moves `amount` from the service's revenue to the user's available balance and writes a `refund` history row. Refunds of an order add up to at most what its captures took together; several partial refunds are fine. An order id reserved and captured again keeps every capture refundable, even while a new hold of it is open; a refund is recorded on the order's captures oldest first. Applies to a frozen account (money arriving is never stopped)",
      rejections: '`order_not_captured` (open, released, expired or unknown), then `refund_exceeds_capture`',
    },
  },
  freeze: {
    origin: 'client',
    schema: (f) =>
      z.object({ ...f.base, type: z.literal('freeze'), reason: freezeReasonSchema }).meta({
        description:
          "Freezes the user's account: withdrawals, transfers out and new reserves are rejected with account_frozen until an unfreeze; money still arrives.",
      }),
    http: endpoint(
      '/api/accounts/freeze/',
      'Freeze an account: money can arrive but not leave (admins)',
      () => z.object({ user_id: entityIdSchema, reason: freezeReasonSchema }),
      (b) => ({ type: 'freeze', ...b }),
    ),
    access: { user: 'none', service: 'none', action: 'freeze an account' },
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['available'],
    eventType: 'freeze',
    movesMoney: false,
    fingerprint: (c) => (c.reason === undefined ? [] : [`reason=${c.reason}`]),
    docs: {
      fields: '`user_id`, `reason` (1-500 characters, as a comment)',
      effect:
        'freezes the account: until an `unfreeze`, `withdraw`, `transfer` (out of it) and `reserve` are rejected with `account_frozen`; deposits, settles (incoming transfers), refunds, and captures, releases and expiries of holds made before the freeze still apply. Moves no money, but makes a `freeze` balance event and takes the version one up. Recorded with who sent it and why in `account_freezes`. Over HTTP, admins only',
      rejections: '`account_already_frozen`',
    },
  },
  unfreeze: {
    origin: 'client',
    schema: (f) =>
      z
        .object({ ...f.base, type: z.literal('unfreeze'), reason: freezeReasonSchema.optional() })
        .meta({ description: "Ends a freeze of the user's account." }),
    http: endpoint(
      '/api/accounts/unfreeze/',
      'Unfreeze an account (admins)',
      () => z.object({ user_id: entityIdSchema, reason: freezeReasonSchema.optional() }),
      (b) => ({ type: 'unfreeze', ...b }),
    ),
    access: { user: 'none', service: 'none', action: 'unfreeze an account' },
    namesOrder: false,
    stoppedByFreeze: false,
    limitedAmount: null,
    accounts: ['available'],
    eventType: 'unfreeze',
    movesMoney: false,
    fingerprint: (c) => (c.reason === undefined ? [] : [`reason=${c.reason}`]),
    docs: {
      fields: '`user_id`, optional `reason`',
      effect: 'ends the freeze; makes an `unfreeze` balance event',
      rejections: '`account_not_frozen`',
    },
  },
} as const satisfies Record<string, CommandSpec>;
