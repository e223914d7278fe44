/**
 * The in-memory state a batch works on: balances of the loaded accounts and the open
 * reservations, updated as each decision is applied so later commands of the same batch see
 * the effect of earlier ones. Pure: the consumer loads it and writes back what changed.
 */
import { crossAlerts, isPast, type AlertState } from './alerts.ts';
import {
  available,
  isBoundedAccount,
  parseAccountKey,
  type AccountKey,
  type Alert,
  type AlertChange,
  type Decision,
  type ExternalPayment,
  type FreezeChange,
  type LedgerView,
  type OrderRef,
  type RefundChange,
  type ReservationChange,
} from './core.ts';

/**
 * An order with captured reservations: what they captured together, and what was refunded of
 * them. An order id may be reserved and captured again after a capture; refunds are bounded by
 * all of its captures, whichever reservation is the latest.
 */
export interface CapturedOrder extends OrderRef {
  capturedAmount: bigint;
  refundedAmount: bigint;
}

/** What the chunk loaded besides balances, reservations and alerts. */
export interface LoadedExtras {
  /** Orders with captured reservations. */
  readonly captured?: Iterable<CapturedOrder>;
  /** Frozen users, with the reason they were frozen for. */
  readonly frozen?: Iterable<readonly [number, string]>;
  /** The external references (externalRefKey) the chunk's deposits and withdrawals name that are taken. */
  readonly externalRefs?: Iterable<string>;
}

export function externalRefKey(serviceId: number, userId: number, externalRef: string): string {
  return `${serviceId}:${userId}:${externalRef}`;
}

/** A freeze or unfreeze this batch applied, with the command that made it. */
export interface FreezeRecord extends FreezeChange {
  readonly commandId: string;
}

export interface ReservationRecord {
  /** Null while the reservation exists only in this batch. */
  readonly id: number | null;
  readonly userId: number;
  readonly serviceId: number;
  readonly orderId: number;
  readonly amount: bigint;
  /** Seconds after the reserve was applied when the hold expires; null for a hold that never does. */
  readonly expiresInS: number | null;
  status: 'open' | 'captured' | 'released' | 'expired';
  capturedAmount: bigint;
  readonly reserveCommandId: string;
  closeCommandId: string | null;
}

/** A decision that would break an invariant: the same command breaks it again on every try. */
export class LedgerInvariantError extends Error {
  override readonly name = 'LedgerInvariantError';
  readonly failureKind = 'deterministic';
}

export function reservationKey(userId: number, serviceId: number, orderId: number): string {
  return `${userId}:${serviceId}:${orderId}`;
}

/**
 * A posting's sides' balances right after it, for the sides that are a user's available or
 * reserved account (null otherwise). Only those accounts are locked while a chunk is decided, so
 * only their balances are known exactly; they give balances at a point in time (sql/0006).
 */
export interface PostingBalances {
  readonly debit: bigint | null;
  readonly credit: bigint | null;
}

export class LedgerState implements LedgerView {
  private readonly balances: Map<AccountKey, bigint>;
  private readonly initial: ReadonlyMap<AccountKey, bigint>;
  private readonly open = new Map<string, ReservationRecord>();
  /** Reservations opened or closed by this batch, in the order it touched them. */
  readonly changedReservations: ReservationRecord[] = [];
  /** Per applied decision, per posting: the balances right after it (see PostingBalances). */
  private readonly balancesAfter = new Map<Decision, PostingBalances[]>();

  /** Orders whose latest reservation was closed by an expire (reservationKey). */
  private readonly expired: Set<string>;
  /** Users' threshold alerts, as loaded and then as this batch changed them. */
  private readonly alerts = new Map<number, AlertState[]>();
  private readonly alertsLoaded: ReadonlySet<string>;
  private readonly alertsRemoved = new Set<string>();
  private readonly alertsTouched = new Set<AlertState>();
  /** Users whose set of alerts this batch changed (one was added or removed). */
  private readonly alertSetsChanged = new Set<number>();
  /** Per applied decision: the alerts it fired, ordered by id. */
  private readonly fired = new Map<Decision, AlertState[]>();
  /** Orders with captured reservations (reservationKey), as loaded and as this batch left them. */
  private readonly captured = new Map<string, CapturedOrder>();
  /** What this batch refunded of each order, in the order it first refunded them. */
  private readonly refunded = new Map<string, RefundChange>();
  /** Frozen users and their reasons, as loaded and as this batch left them. */
  private readonly frozen = new Map<number, string>();
  /** Every freeze and unfreeze this batch applied, in order. */
  readonly freezes: FreezeRecord[] = [];
  /** External references taken, as loaded and as this batch took them (externalRefKey). */
  private readonly externalRefs: Set<string>;
  /** Every deposit and withdrawal this batch applied that names its service, in order. */
  readonly externalPayments: Array<ExternalPayment & { readonly commandId: string }> = [];

  constructor(
    balances: Iterable<readonly [AccountKey, bigint]>,
    openReservations: Iterable<ReservationRecord>,
    expiredOrders: Iterable<string> = [],
    alerts: Iterable<AlertState> = [],
    extras: LoadedExtras = {},
  ) {
    this.balances = new Map(balances);
    for (const order of extras.captured ?? [])
      this.captured.set(reservationKey(order.userId, order.serviceId, order.orderId), { ...order });
    for (const [userId, reason] of extras.frozen ?? []) this.frozen.set(userId, reason);
    this.externalRefs = new Set(extras.externalRefs ?? []);
    this.initial = new Map(this.balances);
    this.expired = new Set(expiredOrders);
    for (const record of openReservations)
      this.open.set(reservationKey(record.userId, record.serviceId, record.orderId), record);
    const loaded = new Set<string>();
    for (const alert of alerts) {
      this.alertList(alert.userId).push({ ...alert });
      loaded.add(alert.id);
    }
    this.alertsLoaded = loaded;
  }

  alertsOf(userId: number): readonly Alert[] {
    return this.alerts.get(userId) ?? [];
  }

  private alertList(userId: number): AlertState[] {
    let list = this.alerts.get(userId);
    if (!list) {
      list = [];
      this.alerts.set(userId, list);
    }
    return list;
  }

  capturedOrder(userId: number, serviceId: number, orderId: number): CapturedOrder | undefined {
    return this.captured.get(reservationKey(userId, serviceId, orderId));
  }

  /** What this batch refunded, per order: the amounts to record on the orders' captures. */
  refunds(): RefundChange[] {
    return [...this.refunded.values()];
  }

  frozenReason(userId: number): string | null {
    return this.frozen.get(userId) ?? null;
  }

  /** Users whose freeze this batch changed, with the reason they are frozen for now (null: not frozen). */
  frozenAfter(): Map<number, string | null> {
    return new Map(this.freezes.map((f) => [f.userId, this.frozenReason(f.userId)]));
  }

  reservationExpired(userId: number, serviceId: number, orderId: number): boolean {
    return this.expired.has(reservationKey(userId, serviceId, orderId));
  }

  balance(key: AccountKey): bigint {
    return this.balances.get(key) ?? 0n;
  }

  openReservation(userId: number, serviceId: number, orderId: number): ReservationRecord | undefined {
    return this.open.get(reservationKey(userId, serviceId, orderId));
  }

  /** Applies an applied decision. Throws LedgerInvariantError if a user balance would go negative. */
  apply(commandId: string, decision: Decision): void {
    if (decision.status !== 'applied') return;
    const after: PostingBalances[] = [];
    for (const posting of decision.postings) {
      if (posting.amount <= 0n) throw new LedgerInvariantError(`posting of ${posting.amount} in ${commandId}`);
      this.balances.set(posting.debit, this.balance(posting.debit) - posting.amount);
      this.balances.set(posting.credit, this.balance(posting.credit) + posting.amount);
      if (isBoundedAccount(posting.debit) && this.balance(posting.debit) < 0n) {
        throw new LedgerInvariantError(`${commandId} would make ${posting.debit} negative`);
      }
      after.push({
        debit: isBoundedAccount(posting.debit) ? this.balance(posting.debit) : null,
        credit: isBoundedAccount(posting.credit) ? this.balance(posting.credit) : null,
      });
    }
    this.balancesAfter.set(decision, after);
    if (decision.reservation) this.applyReservation(commandId, decision.reservation);
    if (decision.alert) this.applyAlertChange(decision.alert);
    if (decision.refund) this.applyRefund(commandId, decision.refund);
    if (decision.freeze) this.applyFreeze(commandId, decision.freeze);
    if (decision.externalPayment) this.applyExternalPayment(commandId, decision.externalPayment);
    // Most batches have no user with alerts: nothing to look at on their hot path.
    if (this.alerts.size > 0) this.fired.set(decision, this.crossAlertsOf(decision));
  }

  externalRefTaken(serviceId: number, userId: number, externalRef: string): boolean {
    return this.externalRefs.has(externalRefKey(serviceId, userId, externalRef));
  }

  private applyExternalPayment(commandId: string, payment: ExternalPayment): void {
    if (payment.externalRef !== null) {
      const key = externalRefKey(payment.serviceId, payment.userId, payment.externalRef);
      if (this.externalRefs.has(key)) throw new LedgerInvariantError(`${commandId} reuses external reference ${key}`);
      this.externalRefs.add(key);
    }
    this.externalPayments.push({ ...payment, commandId });
  }

  /** The alerts an applied decision fired. */
  firedBy(decision: Decision): readonly Alert[] {
    return this.fired.get(decision) ?? [];
  }

  private applyAlertChange(change: AlertChange): void {
    this.alertSetsChanged.add(change.kind === 'add' ? change.alert.userId : change.userId);
    if (change.kind === 'add') {
      const { alert } = change;
      const state = { ...alert, past: isPast(alert, this.balance(available(alert.userId))) };
      this.alertList(alert.userId).push(state);
      this.alertsTouched.add(state);
      return;
    }
    const list = this.alertList(change.userId);
    const at = list.findIndex((alert) => alert.id === change.alertId);
    if (at < 0) throw new LedgerInvariantError(`alert ${change.alertId} removed but not registered`);
    const [removed] = list.splice(at, 1);
    this.alertsTouched.delete(removed!);
    if (this.alertsLoaded.has(change.alertId)) this.alertsRemoved.add(change.alertId);
  }

  /** Moves the alerts of every user whose available balance the decision changed. */
  private crossAlertsOf(decision: Decision): AlertState[] {
    const users = new Set<number>();
    for (const posting of decision.postings) {
      for (const key of [posting.debit, posting.credit]) {
        const { kind, ownerId } = parseAccountKey(key);
        if (kind === 'user_available' && this.alerts.has(ownerId)) users.add(ownerId);
      }
    }
    const fired: AlertState[] = [];
    for (const userId of users) {
      const moved = crossAlerts(this.alertList(userId), this.balance(available(userId)));
      for (const alert of moved.changed) this.alertsTouched.add(alert);
      fired.push(...moved.fired);
    }
    // By id, not by load order: how commands fall into batches must not change the events.
    return fired.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * What the batch did to alerts: the ones to insert or update (their state now), the loaded
   * ones to delete, and the new alert count of every user whose set of alerts changed.
   */
  alertChanges(): { upserts: AlertState[]; deletes: string[]; counts: Map<number, number> } {
    const counts = new Map([...this.alertSetsChanged].map((userId) => [userId, this.alertList(userId).length]));
    return { upserts: [...this.alertsTouched], deletes: [...this.alertsRemoved], counts };
  }

  /** The balances after each posting of a decision this state applied, in posting order. */
  postingBalances(decision: Decision): readonly PostingBalances[] {
    const after = this.balancesAfter.get(decision);
    if (!after) throw new LedgerInvariantError('balances asked for a decision this batch did not apply');
    return after;
  }

  private applyRefund(commandId: string, change: RefundChange): void {
    const order = this.captured.get(reservationKey(change.userId, change.serviceId, change.orderId));
    if (!order) throw new LedgerInvariantError(`${commandId} refunds an order that is not captured`);
    if (order.refundedAmount + change.amount > order.capturedAmount)
      throw new LedgerInvariantError(`${commandId} would refund more than the order's captures`);
    order.refundedAmount += change.amount;
    const key = reservationKey(change.userId, change.serviceId, change.orderId);
    const soFar = this.refunded.get(key)?.amount ?? 0n;
    this.refunded.set(key, { ...change, amount: soFar + change.amount });
  }

  private applyFreeze(commandId: string, change: FreezeChange): void {
    if (change.frozen) this.frozen.set(change.userId, change.reason ?? '');
    else this.frozen.delete(change.userId);
    this.freezes.push({ ...change, commandId });
  }

  private applyReservation(commandId: string, change: ReservationChange): void {
    const key = reservationKey(change.userId, change.serviceId, change.orderId);
    if (change.kind === 'open') {
      const record: ReservationRecord = {
        id: null,
        userId: change.userId,
        serviceId: change.serviceId,
        orderId: change.orderId,
        amount: change.amount,
        expiresInS: change.expiresInS,
        status: 'open',
        capturedAmount: 0n,
        reserveCommandId: commandId,
        closeCommandId: null,
      };
      this.open.set(key, record);
      this.expired.delete(key);
      this.changedReservations.push(record);
      return;
    }
    const record = this.open.get(key);
    if (!record) throw new LedgerInvariantError(`${commandId} closes a reservation that is not open`);
    record.status = change.status;
    record.capturedAmount = change.capturedAmount;
    record.closeCommandId = commandId;
    this.open.delete(key);
    if (change.status === 'captured') {
      const { userId, serviceId, orderId, capturedAmount } = change;
      const order = this.captured.get(key);
      if (order) order.capturedAmount += capturedAmount;
      else this.captured.set(key, { userId, serviceId, orderId, capturedAmount, refundedAmount: 0n });
    }
    if (change.status === 'expired') this.expired.add(key);
    // A reservation opened in this batch is already listed; one loaded from the database is not.
    if (record.id !== null) this.changedReservations.push(record);
  }

  /** Accounts whose balance changed, with the new balance and the change. */
  changedAccounts(): Array<{ key: AccountKey; balance: bigint; delta: bigint }> {
    const changed: Array<{ key: AccountKey; balance: bigint; delta: bigint }> = [];
    for (const [key, balance] of this.balances) {
      const delta = balance - (this.initial.get(key) ?? 0n);
      if (delta !== 0n) changed.push({ key, balance, delta });
    }
    return changed;
  }
}
