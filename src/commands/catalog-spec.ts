/**
 * The shape of a command catalog entry (catalog.ts): what every command type declares about
 * itself, so that the gateway, the consumer, the ledger, the docs and the database each derive
 * their lists from one place.
 */
import type { z } from 'zod';
import type { AmountSchema, commandIdSchema, entityIdSchema } from './fields.ts';

/** The field schemas a command schema is built from, for one set of limits and reply-topic policy. */
export interface CommandFields {
  /** `id`, `user_id` and the optional `reply_to`: every client command has them. */
  readonly base: { id: typeof commandIdSchema; user_id: typeof entityIdSchema; reply_to: z.ZodOptional<z.ZodString> };
  readonly amount: AmountSchema;
  /** The consumer's own commands are bounded by what they complete, not by AMOUNT_MINOR_MAX. */
  readonly ceilingAmount: AmountSchema;
  readonly comment: z.ZodOptional<z.ZodType<string, string>>;
  readonly order: { service_id: typeof entityIdSchema; order_id: typeof entityIdSchema };
  readonly recipientsMax: number;
}

/** The caller of an HTTP endpoint, as far as building its command needs. */
export interface Caller {
  readonly userId: number;
  readonly role: 'user' | 'service' | 'admin';
}

/** A command without its id (the gateway makes it from the Idempotency-Key) and `reply_to`. */
export type CommandBody = { readonly type: string; readonly user_id: number } & Record<string, unknown>;

export interface HttpEndpoint<B> {
  readonly path: string;
  /** What the OpenAPI document says it does. */
  readonly summary: string;
  /** The request body, built from the same fields as the command. */
  readonly body: (f: CommandFields) => z.ZodType<B>;
  /** The body as a command, without its id. */
  readonly toCommand: (body: B, caller: Caller) => CommandBody;
}

export function endpoint<B>(
  path: string,
  summary: string,
  body: (f: CommandFields) => z.ZodType<B>,
  toCommand: (body: B, caller: Caller) => CommandBody,
): HttpEndpoint<unknown> {
  return { path, summary, body, toCommand } as HttpEndpoint<unknown>;
}

/**
 * Who may send a client command over HTTP: a `user` never, on their own account (`own`), or if
 * USER_ACTIONS grants it (`grantable`, on their own account); a `service` on any account, or only
 * for the services it is bound to (`services`), or never. An admin always may.
 */
export interface Access {
  readonly user: 'none' | 'own' | 'grantable';
  readonly service: 'none' | 'any' | 'services';
  /** How the permission table and its 403 name the action. */
  readonly action: string;
}

/** The accounts a command reads or writes, by role; ledger/core.ts turns them into account keys. */
export type AccountRole = 'available' | 'reserved' | 'incoming' | 'external' | 'revenue' | 'recipients_incoming';

/** The amount AMOUNT_MINOR_MAX bounds: a field, the sum of a transfer's legs, or none (bounded by what it completes). */
export type LimitedAmount = 'amount' | 'threshold' | 'transfer_total' | null;

export interface CommandSpec {
  /** Clients (HTTP or Kafka producers) send it, or only the consumer makes it (with a proof). */
  readonly origin: 'client' | 'consumer';
  readonly schema: (f: CommandFields) => z.ZodObject;
  readonly http: HttpEndpoint<unknown> | null;
  readonly access: Access | null;
  /** Whether it names an order (service_id, order_id): its reservations are loaded. */
  readonly namesOrder: boolean;
  /** Whether it takes money out of the available balance, which a freeze stops. */
  readonly stoppedByFreeze: boolean;
  readonly limitedAmount: LimitedAmount;
  readonly accounts: readonly AccountRole[];
  /** The balance event it makes when applied; null for one that changes no balance. */
  readonly eventType: string | null;
  /** Whether an applied one posts money (verify: the postings it must have). */
  readonly movesMoney: boolean;
  /** What its fingerprint covers besides the common fields (schema.ts); appended only when present. */
  readonly fingerprint?: (c: Readonly<Record<string, unknown>>) => string[];
  /** docs/commands.md's row: its fields, what it does, and its rejections in the order checked. */
  readonly docs: { readonly fields: string; readonly effect: string; readonly rejections: string };
}
