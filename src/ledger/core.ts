/**
 * The ledger's rules, pure: given the loaded state and a command, decide the outcome and the
 * postings. No Kafka, HTTP or SQL here; the consumer loads state, calls `decide`, and writes.
 * (TigerBeetle's split: prefetch does the I/O, commit is deterministic.)
 */
import { COMMAND_CATALOG } from '../commands/catalog.ts';
import type { AccountRole } from '../commands/catalog-spec.ts';
import { expireIdOf, type AlertDirection, type Command } from '../commands/schema.ts';
import { type AccountKey, EXTERNAL_ACCOUNT, available, incoming, reserved, revenue } from './account-keys.ts';
import { legsOf, transferTotal } from './transfers.ts';
export * from './account-keys.ts';
export * from './transfers.ts';
// The result codes and history types are part of the command contract: defined in commands/,
// re-exported here for the rules that decide them.
export { RESULT_CODES, TRANSACTION_TYPES, type ResultCode, type TransactionType } from '../commands/result-codes.ts';
import { RESULT_CODES, type ResultCode, type TransactionType } from '../commands/result-codes.ts';

/** Money moving from one account to another: balanced by construction. */
export interface Posting {
  readonly debit: AccountKey;
  readonly credit: AccountKey;
  readonly amount: bigint;
}

/** A row of a user's history. `amount` is negative when money leaves the user. */
export interface Entry {
  readonly userId: number;
  readonly amount: bigint;
  readonly type: TransactionType;
  readonly serviceId: number | null;
  readonly orderId: number | null;
  readonly counterpartyId: number | null;
  readonly comment: string | null;
}

export interface OrderRef {
  readonly userId: number;
  readonly serviceId: number;
  readonly orderId: number;
}

export type ReservationChange =
  | ({ readonly kind: 'open'; readonly amount: bigint; readonly expiresInS: number | null } & OrderRef)
  | ({
      readonly kind: 'close';
      readonly status: 'captured' | 'released' | 'expired';
      readonly capturedAmount: bigint;
    } & OrderRef);

/** A threshold alert on a user's available balance; its id is the id of the command that registered it. */
export interface Alert {
  readonly id: string;
  readonly userId: number;
  readonly direction: AlertDirection;
  readonly threshold: bigint;
}

export type AlertChange =
  | { readonly kind: 'add'; readonly alert: Alert }
  | { readonly kind: 'remove'; readonly userId: number; readonly alertId: string };

/** A refund of part of a captured order: its amount, added to what was refunded of it. */
export interface RefundChange extends OrderRef {
  readonly amount: bigint;
}

/** A freeze (with its reason) or an unfreeze of a user's account. */
export interface FreezeChange {
  readonly userId: number;
  readonly frozen: boolean;
  readonly reason: string | null;
}

/**
 * A deposit or withdrawal that names the service it came through: what reconciliation holds
 * against the service's statement. `externalRef` is unique per service.
 */
export interface ExternalPayment {
  readonly serviceId: number;
  readonly externalRef: string | null;
  readonly userId: number;
  readonly direction: 'deposit' | 'withdraw';
  readonly amount: bigint;
}

export interface Decision {
  readonly status: 'applied' | 'rejected';
  readonly code: ResultCode;
  readonly message: string;
  readonly postings: readonly Posting[];
  readonly entries: readonly Entry[];
  readonly reservation: ReservationChange | null;
  readonly alert?: AlertChange;
  readonly refund?: RefundChange;
  readonly freeze?: FreezeChange;
  readonly externalPayment?: ExternalPayment;
}

/** Limits the rules enforce; part of the input, so a replay with the same limits decides the same. */
export interface LedgerLimits {
  /** The largest amount (or alert threshold) one command may name (AMOUNT_MINOR_MAX). */
  readonly amountMinorMax: bigint;
  /** The most a user may hold, available plus reserved, after a deposit. */
  readonly balanceMinorMax: bigint;
  /** The most threshold alerts one user may have (ALERTS_PER_USER_MAX). */
  readonly alertsPerUserMax: number;
}

/** The ledger's limits from the configured ones (config.limits), amounts as bigint. */
export function ledgerLimitsOf(limits: {
  amountMinorMax: number;
  balanceMinorMax: number;
  alertsPerUserMax: number;
}): LedgerLimits {
  return {
    amountMinorMax: BigInt(limits.amountMinorMax),
    balanceMinorMax: BigInt(limits.balanceMinorMax),
    alertsPerUserMax: limits.alertsPerUserMax,
  };
}

/**
 * The amount a command names, checked against AMOUNT_MINOR_MAX here and not only at the edge:
 * the limit a partition decides with is the one its log recorded, so a gateway with a higher
 * limit gets a recorded rejection, never a dead letter. A settle is bounded by its transfer.
 */
function namedAmount(command: Command): bigint | null {
  // The catalog says which (a capture is bounded by its reservation, made under the limit of its
  // day; a refund by its captures; a transfer, split or not, by what leaves the sender).
  const limited = COMMAND_CATALOG[command.type].limitedAmount;
  if (limited === 'transfer_total') return command.type === 'transfer' ? transferTotal(command) : null;
  if (limited === null) return null;
  const value = (command as Record<string, unknown>)[limited];
  return typeof value === 'bigint' ? value : null;
}

/** What `decide` may read. */
export interface LedgerView {
  balance(key: AccountKey): bigint;
  openReservation(
    userId: number,
    serviceId: number,
    orderId: number,
  ): { readonly amount: bigint; readonly reserveCommandId: string } | undefined;
  /** True when the order's latest reservation was closed by an expire. */
  reservationExpired(userId: number, serviceId: number, orderId: number): boolean;
  /** The user's threshold alerts, in no particular order. */
  alertsOf(userId: number): readonly Alert[];
  /**
   * What the order's captured reservations captured together and what was refunded of them;
   * undefined if none of its reservations was captured (open, released, expired or unknown).
   */
  capturedOrder(
    userId: number,
    serviceId: number,
    orderId: number,
  ): { readonly capturedAmount: bigint; readonly refundedAmount: bigint } | undefined;
  /** Why the user's account is frozen, or null when it is not. */
  frozenReason(userId: number): string | null;
  /**
   * Whether the user already has a deposit or withdrawal of the service with this external
   * reference. Per user, so the decision depends only on the user's partition and a replay
   * decides the same whatever order partitions are read in.
   */
  externalRefTaken(serviceId: number, userId: number, externalRef: string): boolean;
}

type BoundaryCommand = Extract<Command, { type: 'deposit' | 'withdraw' }>;

function refTaken(view: LedgerView, command: BoundaryCommand): boolean {
  const { service_id: serviceId, external_ref: ref } = command;
  return serviceId !== undefined && ref !== undefined && view.externalRefTaken(serviceId, command.user_id, ref);
}

/** A deposit or withdrawal naming its service is recorded for reconciliation (ExternalPayment). */
function withExternalPayment(command: BoundaryCommand, decision: Decision): Decision {
  if (command.service_id === undefined) return decision;
  return {
    ...decision,
    externalPayment: {
      serviceId: command.service_id,
      externalRef: command.external_ref ?? null,
      userId: command.user_id,
      direction: command.type,
      amount: command.amount,
    },
  };
}

/** The accounts a command reads or writes (its catalog entry's roles); the consumer loads (and locks) these. */
export function accountsOf(command: Command): AccountKey[] {
  return COMMAND_CATALOG[command.type].accounts.flatMap((role) => accountsIn(role, command));
}

function accountsIn(role: AccountRole, command: Command): AccountKey[] {
  const serviceId = (command as { service_id?: number }).service_id;
  switch (role) {
    case 'available':
      return [available(command.user_id)];
    case 'reserved':
      return [reserved(command.user_id)];
    case 'incoming':
      return [incoming(command.user_id)];
    case 'external':
      return [EXTERNAL_ACCOUNT];
    case 'revenue':
      return serviceId === undefined ? [] : [revenue(serviceId)];
    case 'recipients_incoming':
      return command.type === 'transfer' ? legsOf(command).map((leg) => incoming(leg.recipientId)) : [];
  }
}

/**
 * The user whose balances a reply reports: the one whose spendable money the command decides
 * on. A transfer's recipient is not locked or reported: their credit lands in incoming, and
 * locking them would make partitions wait on each other.
 */
export function usersOf(command: Command): number[] {
  return [command.user_id];
}

export function decide(view: LedgerView, command: Command, limits: LedgerLimits): Decision {
  if ((namedAmount(command) ?? 0n) > limits.amountMinorMax) return rejected('amount_too_large');
  if (COMMAND_CATALOG[command.type].stoppedByFreeze && view.frozenReason(command.user_id) !== null)
    return rejected('account_frozen');
  switch (command.type) {
    case 'deposit':
      if (holdings(view, command.user_id) + command.amount > limits.balanceMinorMax)
        return rejected('balance_limit_exceeded');
      if (refTaken(view, command)) return rejected('external_ref_reused');
      return withExternalPayment(
        command,
        applied(
          [{ debit: EXTERNAL_ACCOUNT, credit: available(command.user_id), amount: command.amount }],
          [entry(command.user_id, command.amount, 'deposit', { comment: command.comment })],
        ),
      );
    case 'withdraw':
      if (view.balance(available(command.user_id)) < command.amount) return rejected('insufficient_funds');
      if (refTaken(view, command)) return rejected('external_ref_reused');
      return withExternalPayment(
        command,
        applied(
          [{ debit: available(command.user_id), credit: EXTERNAL_ACCOUNT, amount: command.amount }],
          [entry(command.user_id, -command.amount, 'withdraw', { comment: command.comment })],
        ),
      );
    case 'reserve':
      return decideReserve(view, command);
    case 'capture':
      return decideCapture(view, command);
    case 'release':
      return decideRelease(view, command);
    case 'transfer':
      return decideTransfer(view, command);
    case 'expire':
      return decideExpire(view, command);
    case 'refund':
      return decideRefund(view, command);
    case 'freeze':
    case 'unfreeze':
      return decideFreeze(view, command);
    case 'set_alert':
      return decideSetAlert(view, command, limits);
    case 'remove_alert':
      if (!view.alertsOf(command.user_id).some((alert) => alert.id === command.alert_id))
        return rejected('alert_not_found');
      return { ...applied([], []), alert: { kind: 'remove', userId: command.user_id, alertId: command.alert_id } };
    case 'settle':
      // Unconditional by design: whether the transfer is already applied depends on how the
      // partitions interleave, and decisions must not (see sql/0003_incoming.sql).
      return applied(
        [{ debit: incoming(command.user_id), credit: available(command.user_id), amount: command.amount }],
        [],
      );
  }
}

/**
 * What a user holds on their own partition. Incoming money is left out: it was decided on the
 * senders' partitions, and a settle never checks the limit, since refusing it would strand the
 * money in incoming (see docs/commands.md).
 */
function holdings(view: LedgerView, userId: number): bigint {
  return view.balance(available(userId)) + view.balance(reserved(userId));
}

export type CommandOf<T extends Command['type']> = Extract<Command, { type: T }>;

function decideReserve(view: LedgerView, command: CommandOf<'reserve'>): Decision {
  const { user_id: userId, service_id: serviceId, order_id: orderId, amount } = command;
  if (view.openReservation(userId, serviceId, orderId)) return rejected('reservation_exists');
  if (view.balance(available(userId)) < amount) return rejected('insufficient_funds');
  return applied(
    [{ debit: available(userId), credit: reserved(userId), amount }],
    [entry(userId, -amount, 'reserve', { serviceId, orderId, comment: command.comment })],
    { kind: 'open', amount, userId, serviceId, orderId, expiresInS: command.expires_in_s ?? null },
  );
}

/**
 * Revenue recognition: the captured amount goes to the service's revenue, any remainder of the
 * hold goes back to the user, and the reservation closes either way.
 */
function decideCapture(view: LedgerView, command: CommandOf<'capture'>): Decision {
  const { user_id: userId, service_id: serviceId, order_id: orderId, amount } = command;
  const hold = view.openReservation(userId, serviceId, orderId);
  if (!hold) return noOpenReservation(view, command);
  if (amount > hold.amount) return rejected('amount_exceeds_reservation');
  const postings: Posting[] = [{ debit: reserved(userId), credit: revenue(serviceId), amount }];
  const entries: Entry[] = [entry(userId, -amount, 'capture', { serviceId, orderId, comment: command.comment })];
  const remainder = hold.amount - amount;
  if (remainder > 0n) {
    postings.push({ debit: reserved(userId), credit: available(userId), amount: remainder });
    entries.push(entry(userId, remainder, 'release', { serviceId, orderId, comment: command.comment }));
  }
  return applied(postings, entries, {
    kind: 'close',
    status: 'captured',
    capturedAmount: amount,
    userId,
    serviceId,
    orderId,
  });
}

/**
 * Gives back part or all of a captured order: from the service's revenue to the user. Applies to
 * a frozen account too: money arriving is never stopped.
 */
function decideRefund(view: LedgerView, command: CommandOf<'refund'>): Decision {
  const { user_id: userId, service_id: serviceId, order_id: orderId, amount } = command;
  const order = view.capturedOrder(userId, serviceId, orderId);
  if (!order) return rejected('order_not_captured');
  if (amount > order.capturedAmount - order.refundedAmount) return rejected('refund_exceeds_capture');
  return {
    ...applied(
      [{ debit: revenue(serviceId), credit: available(userId), amount }],
      [entry(userId, amount, 'refund', { serviceId, orderId, comment: command.comment })],
    ),
    refund: { userId, serviceId, orderId, amount },
  };
}

/** A freeze of an account that is not frozen, or an unfreeze of one that is; it moves no money. */
function decideFreeze(view: LedgerView, command: CommandOf<'freeze' | 'unfreeze'>): Decision {
  const frozen = view.frozenReason(command.user_id) !== null;
  if (command.type === 'freeze' && frozen) return rejected('account_already_frozen');
  if (command.type === 'unfreeze' && !frozen) return rejected('account_not_frozen');
  return {
    ...applied([], []),
    freeze: { userId: command.user_id, frozen: command.type === 'freeze', reason: command.reason ?? null },
  };
}

function decideRelease(view: LedgerView, command: CommandOf<'release'>): Decision {
  const { user_id: userId, service_id: serviceId, order_id: orderId } = command;
  const hold = view.openReservation(userId, serviceId, orderId);
  if (!hold) return noOpenReservation(view, command);
  return applied(
    [{ debit: reserved(userId), credit: available(userId), amount: hold.amount }],
    [entry(userId, hold.amount, 'release', { serviceId, orderId, comment: command.comment })],
    { kind: 'close', status: 'released', capturedAmount: 0n, userId, serviceId, orderId },
  );
}

/** A capture or release that finds no open hold: expired, or never there (or already closed). */
function noOpenReservation(view: LedgerView, command: CommandOf<'capture' | 'release'>): Decision {
  const expired = view.reservationExpired(command.user_id, command.service_id, command.order_id);
  return rejected(expired ? 'reservation_expired' : 'reservation_not_found');
}

/**
 * Returns an expired hold, if the reserve that opened it is the open one. Whether the hold
 * expired is decided by where the expire lands in the user's partition, not by the clock: a
 * capture or release ordered before it wins, and then the expire finds nothing to return, so a
 * replay of the log decides the same.
 */
function decideExpire(view: LedgerView, command: CommandOf<'expire'>): Decision {
  const { user_id: userId, service_id: serviceId, order_id: orderId } = command;
  const hold = view.openReservation(userId, serviceId, orderId);
  if (!hold || expireIdOf(hold.reserveCommandId) !== command.id) return rejected('reservation_not_found');
  return applied(
    [{ debit: reserved(userId), credit: available(userId), amount: hold.amount }],
    [entry(userId, hold.amount, 'expire', { serviceId, orderId })],
    { kind: 'close', status: 'expired', capturedAmount: 0n, userId, serviceId, orderId },
  );
}

/** Registers an alert; whether the balance is already past it is the state's business (state.ts). */
function decideSetAlert(view: LedgerView, command: CommandOf<'set_alert'>, limits: LedgerLimits): Decision {
  const { user_id: userId, direction, threshold } = command;
  if (view.alertsOf(userId).length >= limits.alertsPerUserMax) return rejected('alert_limit_exceeded');
  return { ...applied([], []), alert: { kind: 'add', alert: { id: command.id, userId, direction, threshold } } };
}

/**
 * Debits the sender the whole of every leg in one decision, or nothing: each recipient is
 * credited now, in this transaction, but into incoming; it becomes spendable when the settle the
 * consumer publishes to that recipient's partition is applied.
 */
function decideTransfer(view: LedgerView, command: CommandOf<'transfer'>): Decision {
  const senderId = command.user_id;
  const legs = legsOf(command);
  if (legs.some((leg) => leg.recipientId === senderId)) return rejected('same_account');
  if (view.balance(available(senderId)) < transferTotal(command)) return rejected('insufficient_funds');
  return applied(
    legs.map((leg) => ({ debit: available(senderId), credit: incoming(leg.recipientId), amount: leg.amount })),
    legs.flatMap((leg) => [
      entry(senderId, -leg.amount, 'transfer_out', { counterpartyId: leg.recipientId, comment: leg.comment }),
      entry(leg.recipientId, leg.amount, 'transfer_in', { counterpartyId: senderId, comment: leg.comment }),
    ]),
  );
}

function applied(postings: Posting[], entries: Entry[], reservation: ReservationChange | null = null): Decision {
  return { status: 'applied', code: 'ok', message: RESULT_CODES.ok, postings, entries, reservation };
}

export function rejected(code: Exclude<ResultCode, 'ok'>, message: string = RESULT_CODES[code]): Decision {
  return { status: 'rejected', code, message, postings: [], entries: [], reservation: null };
}

function entry(
  userId: number,
  amount: bigint,
  type: TransactionType,
  extra: { serviceId?: number; orderId?: number; counterpartyId?: number; comment?: string | undefined },
): Entry {
  return {
    userId,
    amount,
    type,
    serviceId: extra.serviceId ?? null,
    orderId: extra.orderId ?? null,
    counterpartyId: extra.counterpartyId ?? null,
    comment: extra.comment ?? null,
  };
}
