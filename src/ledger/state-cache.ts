/**
 * What a partition's consumer knows of its users between chunks: their accounts (balances,
 * version, alerts, freeze), their orders' latest reservations and captures, the ids of its shared
 * accounts, and the ids of commands it decided recently. A partition has one consumer at a time
 * (its epoch says which), and that consumer wrote all of this itself, so a chunk of warm users
 * decides without reading anything (cached-apply.ts). It never holds what other partitions write
 * (recipients' incoming balances, the shared stripes' balances): those are written by delta.
 *
 * Bounded: least recently used users, orders and ids go first. Pure: no I/O. Everything handed
 * out is a copy, because the decision's state changes what it is given.
 */
import type { AlertState } from './alerts.ts';
import { available, parseAccountKey, reserved, type AccountKey } from './core.ts';
import type { DecidedChunk, LoadedState } from './decide-chunk.ts';
import { type CapturedOrder, type ReservationRecord, reservationKey } from './state.ts';
import type { CommittedChunk, LoadedAccount, OrderKey } from './store/index.ts';

export interface StateCacheLimits {
  /** Users whose accounts are kept; past it, the least recently used go. */
  readonly usersMax: number;
  /** Orders whose latest reservation is kept. */
  readonly ordersMax: number;
  /** Ids of recently decided commands kept, to send their repeats the sure way at once. */
  readonly commandIdsMax: number;
}

interface CachedUser {
  readonly available: LoadedAccount;
  readonly reserved: LoadedAccount;
  /** The user's alerts (none unless the available account counts some). */
  readonly alerts: readonly AlertState[];
}

interface CachedOrder {
  readonly open: ReservationRecord | null;
  readonly expired: boolean;
  readonly captured: CapturedOrder | null;
}

export interface CacheMisses {
  readonly users: number[];
  readonly orders: OrderKey[];
  readonly shared: AccountKey[];
}

export class StateCache {
  private readonly users = new Map<number, CachedUser>();
  private readonly orders = new Map<string, CachedOrder>();
  private readonly ordersOfUser = new Map<number, Set<string>>();
  private readonly shared = new Map<AccountKey, number>();
  private readonly decided = new Set<string>();

  constructor(private readonly limits: StateCacheLimits) {}

  get size(): { users: number; orders: number; shared: number; commandIds: number } {
    return {
      users: this.users.size,
      orders: this.orders.size,
      shared: this.shared.size,
      commandIds: this.decided.size,
    };
  }

  /** Whether any of these command ids was decided through this cache recently. */
  decidedAny(ids: readonly string[]): boolean {
    return ids.some((id) => this.decided.has(id));
  }

  /** What a chunk needs that the cache does not hold. */
  missing(userIds: readonly number[], orders: readonly OrderKey[], sharedKeys: readonly AccountKey[]): CacheMisses {
    return {
      users: userIds.filter((id) => !this.users.has(id)),
      orders: orders.filter((o) => !this.orders.has(reservationKey(o.userId, o.serviceId, o.orderId))),
      shared: sharedKeys.filter((key) => !this.shared.has(key)),
    };
  }

  /** Takes in what a cold read loaded: every user, order and shared account it was asked for. */
  absorbLoaded(loaded: LoadedState, asked: CacheMisses): void {
    const alertsOf = new Map<number, AlertState[]>();
    for (const alert of loaded.alerts) {
      const list = alertsOf.get(alert.userId) ?? [];
      list.push({ ...alert });
      alertsOf.set(alert.userId, list);
    }
    for (const userId of asked.users) {
      const availableAccount = loaded.accounts.get(available(userId));
      const reservedAccount = loaded.accounts.get(reserved(userId));
      if (!availableAccount || !reservedAccount) continue;
      this.putUser(userId, {
        available: availableAccount,
        reserved: reservedAccount,
        alerts: alertsOf.get(userId) ?? [],
      });
    }
    for (const order of asked.orders) {
      const key = reservationKey(order.userId, order.serviceId, order.orderId);
      const open = loaded.reservations.open.find((r) => reservationKey(r.userId, r.serviceId, r.orderId) === key);
      const captured = loaded.reservations.captured.find(
        (c) => reservationKey(c.userId, c.serviceId, c.orderId) === key,
      );
      this.putOrder(order.userId, key, {
        open: open ? { ...open } : null,
        expired: loaded.reservations.expired.includes(key),
        captured: captured ? { ...captured } : null,
      });
    }
    for (const key of asked.shared) {
      const account = loaded.accounts.get(key);
      if (account) this.putShared(key, account.id);
    }
  }

  /**
   * The state a chunk decides on, from the cache alone (call `missing` first: every user, order
   * and shared account asked for must be held). Shared accounts carry their id and a zero
   * balance: the chunk only adds deltas to them.
   */
  loaded(userIds: readonly number[], orders: readonly OrderKey[], sharedKeys: readonly AccountKey[]): LoadedState {
    const accounts = new Map<AccountKey, LoadedAccount>();
    const alerts: AlertState[] = [];
    for (const userId of userIds) {
      const user = this.touchUser(userId);
      accounts.set(user.available.key, user.available);
      accounts.set(user.reserved.key, user.reserved);
      for (const alert of user.alerts) alerts.push({ ...alert });
    }
    for (const key of sharedKeys)
      accounts.set(key, {
        id: this.shared.get(key)!,
        key,
        balance: 0n,
        version: 0n,
        alertCount: 0,
        frozenReason: null,
        chainHash: null,
      });
    const reservations: LoadedState['reservations'] = { open: [], expired: [], captured: [] };
    for (const order of orders) {
      const key = reservationKey(order.userId, order.serviceId, order.orderId);
      const cached = this.touchOrder(key);
      if (cached.open) reservations.open.push({ ...cached.open });
      if (cached.expired) reservations.expired.push(key);
      if (cached.captured) reservations.captured.push({ ...cached.captured });
    }
    return { stored: new Map(), accounts, reservations, alerts };
  }

  /** Keeps what a committed chunk left its users and orders at, and remembers its command ids. */
  absorbDecided(
    decided: DecidedChunk,
    committed: CommittedChunk,
    userIds: readonly number[],
    orders: readonly OrderKey[],
  ): void {
    const { state } = decided;
    for (const userId of userIds) {
      const user = this.users.get(userId);
      if (!user) continue;
      const alerts = state.alertsOf(userId).map((a) => ({ ...(a as AlertState) }));
      const frozenReason = state.frozenReason(userId);
      this.putUser(userId, {
        available: {
          ...user.available,
          balance: state.balance(user.available.key),
          version: decided.versions.get(userId) ?? user.available.version,
          chainHash: decided.chainHeads.get(userId) ?? user.available.chainHash,
          alertCount: alerts.length,
          frozenReason,
        },
        reserved: { ...user.reserved, balance: state.balance(user.reserved.key) },
        alerts,
      });
    }
    for (const order of orders) {
      const key = reservationKey(order.userId, order.serviceId, order.orderId);
      const open = state.openReservation(order.userId, order.serviceId, order.orderId);
      const id = open && (open.id ?? committed.openedReservationIds.get(open.reserveCommandId));
      const captured = state.capturedOrder(order.userId, order.serviceId, order.orderId);
      this.putOrder(order.userId, key, {
        open: open && id !== undefined && id !== null ? { ...open, id } : null,
        expired: state.reservationExpired(order.userId, order.serviceId, order.orderId),
        captured: captured ? { ...captured } : null,
      });
    }
    for (const command of decided.commit.commands) this.remember(command.id);
  }

  /** Forgets users (and their orders): their rows are read again before their next chunk. */
  evictUsers(userIds: Iterable<number>): void {
    for (const userId of userIds) {
      this.users.delete(userId);
      for (const key of this.ordersOfUser.get(userId) ?? []) this.orders.delete(key);
      this.ordersOfUser.delete(userId);
    }
  }

  clear(): void {
    this.users.clear();
    this.orders.clear();
    this.ordersOfUser.clear();
    this.shared.clear();
    this.decided.clear();
  }

  private touchUser(userId: number): CachedUser {
    const user = this.users.get(userId)!;
    this.users.delete(userId);
    this.users.set(userId, user);
    return user;
  }

  private touchOrder(key: string): CachedOrder {
    const order = this.orders.get(key)!;
    this.orders.delete(key);
    this.orders.set(key, order);
    return order;
  }

  private putUser(userId: number, user: CachedUser): void {
    this.users.delete(userId);
    this.users.set(userId, user);
    while (this.users.size > this.limits.usersMax) this.evictUsers([this.users.keys().next().value!]);
  }

  private putOrder(userId: number, key: string, order: CachedOrder): void {
    this.orders.delete(key);
    this.orders.set(key, order);
    let keys = this.ordersOfUser.get(userId);
    if (!keys) this.ordersOfUser.set(userId, (keys = new Set()));
    keys.add(key);
    while (this.orders.size > this.limits.ordersMax) {
      const oldest = this.orders.keys().next().value!;
      this.orders.delete(oldest);
      this.ordersOfUser.get(Number(oldest.split(':')[0]))?.delete(oldest);
    }
  }

  private putShared(key: AccountKey, id: number): void {
    this.shared.set(key, id);
    // Ids of shared accounts never change; bounded like the users they belong to.
    if (this.shared.size > this.limits.usersMax) this.shared.delete(this.shared.keys().next().value!);
  }

  private remember(id: string): void {
    this.decided.add(id);
    if (this.decided.size > this.limits.commandIdsMax) this.decided.delete(this.decided.values().next().value!);
  }
}

/** The users a set of accounts belongs to (user accounts only). */
export function ownersOf(keys: Iterable<AccountKey>): number[] {
  const owners = new Set<number>();
  for (const key of keys) {
    const { kind, ownerId } = parseAccountKey(key);
    if (kind === 'user_available' || kind === 'user_reserved') owners.add(ownerId);
  }
  return [...owners];
}
