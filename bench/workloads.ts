/**
 * Deterministic command streams for the benchmarks (a seeded generator, so runs compare).
 * Each message is keyed by its user, as every producer must.
 */
import type { CommandInput } from '../src/commands/schema.ts';

export interface Message {
  readonly key: string;
  readonly value: string;
}

/** mulberry32: small, fast and good enough to spread users and amounts. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random whole number of kopecks in [min, max). */
const cents = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min));
/** Kopecks as an exact decimal string, without floating point. */
const money = (kopecks: number) => `${Math.floor(kopecks / 100)}.${String(kopecks % 100).padStart(2, '0')}`;

/**
 * About 70% deposits and withdrawals, 20% reserve/capture/release, 10% transfers, over `users`.
 */
export function mixedCommands(count: number, users: number, seed = 42): Message[] {
  const random = seededRandom(seed);
  const open = new Map<number, Array<{ serviceId: number; orderId: number; amount: number }>>();
  let order = 0;
  const messages: Message[] = [];
  for (let i = 0; i < count; i += 1) {
    const user = 1 + Math.floor(random() * users);
    const id = `mix-${seed}-${i}`;
    const roll = random();
    let command: CommandInput;
    if (roll < 0.4) command = { id, type: 'deposit', user_id: user, amount: money(cents(random, 1_000, 100_000)) };
    else if (roll < 0.7) command = { id, type: 'withdraw', user_id: user, amount: money(cents(random, 100, 5_000)) };
    else if (roll < 0.9) command = orderCommand(id, user, random, open, () => ++order);
    else {
      const recipient = 1 + Math.floor(random() * users);
      command = {
        id,
        type: 'transfer',
        user_id: user,
        recipient_id: recipient,
        amount: money(cents(random, 100, 3_000)),
      };
    }
    messages.push({ key: String(user), value: JSON.stringify(command) });
  }
  return messages;
}

function orderCommand(
  id: string,
  user: number,
  random: () => number,
  open: Map<number, Array<{ serviceId: number; orderId: number; amount: number }>>,
  nextOrder: () => number,
): CommandInput {
  const orders = open.get(user) ?? [];
  if (orders.length === 0 || random() < 0.4) {
    const reservation = {
      serviceId: 1 + Math.floor(random() * 20),
      orderId: nextOrder(),
      amount: cents(random, 100, 2_000),
    };
    orders.push(reservation);
    open.set(user, orders);
    return {
      id,
      type: 'reserve',
      user_id: user,
      service_id: reservation.serviceId,
      order_id: reservation.orderId,
      amount: money(reservation.amount),
    };
  }
  const reservation = orders.shift()!;
  const ids = { user_id: user, service_id: reservation.serviceId, order_id: reservation.orderId };
  if (random() < 0.5) return { id, type: 'release', ...ids };
  return {
    id,
    type: 'capture',
    ...ids,
    amount: money(Math.max(1, Math.floor(reservation.amount * (0.5 + random() / 2)))),
  };
}

/** Every command for one user: deposits, withdrawals and a few reservations. */
export function hotAccountCommands(count: number, user: number, seed = 7): Message[] {
  const random = seededRandom(seed);
  const messages: Message[] = [];
  let order = 0;
  for (let i = 0; i < count; i += 1) {
    const id = `hot-${seed}-${i}`;
    const roll = random();
    let command: CommandInput;
    if (roll < 0.5) command = { id, type: 'deposit', user_id: user, amount: money(cents(random, 1_000, 10_000)) };
    else if (roll < 0.9) command = { id, type: 'withdraw', user_id: user, amount: money(cents(random, 100, 5_000)) };
    else if (roll < 0.95)
      command = { id, type: 'reserve', user_id: user, service_id: 1, order_id: ++order, amount: '1.00' };
    else command = { id, type: 'capture', user_id: user, service_id: 1, order_id: Math.max(1, order), amount: '1.00' };
    messages.push({ key: String(user), value: JSON.stringify(command) });
  }
  return messages;
}
