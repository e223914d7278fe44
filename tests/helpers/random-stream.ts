/**
 * A random stream of every command type (settles included) for a few users, applied chunk by
 * chunk through the ledger's write path, without Kafka. Tests of what the ledger records over
 * time (balances at an instant, statements) drive it and look at the database between chunks.
 */
import fc from 'fast-check';
import type { Config } from '../../src/config.ts';
import { formatMinor } from '../../src/commands/money.ts';
import { commandFingerprint, createCommandSchema, type CommandInput } from '../../src/commands/schema.ts';
import { applyCommands, type BatchResult } from '../../src/ledger/apply-batch.ts';
import type { TestDatabase } from './stack.ts';
import { ledgerLimitsOf } from '../../src/ledger/core.ts';

/** Applies `inputs` as one chunk through the ledger's write path, as the consumer would, without Kafka. */
export async function applyInputs(
  db: TestDatabase,
  config: Config,
  inputs: readonly CommandInput[],
): Promise<BatchResult> {
  const schema = createCommandSchema(config.limits);
  const items = inputs.map((input) => {
    const command = schema.parse(input);
    return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
  });
  return (await applyCommands(db.pool, items, ledgerLimitsOf(config.limits))).result;
}

/** Applies one chunk through the ledger's write path; returns the ids it applied. */
export function chunkApplier(db: TestDatabase, config: Config) {
  return async (inputs: readonly CommandInput[]): Promise<Set<string>> => {
    const result = await applyInputs(db, config, inputs);
    return new Set(result.replies.filter((r) => r.status === 'applied').map((r) => r.command_id));
  };
}

export interface RandomStream {
  readonly users: readonly number[];
  readonly steps: number;
  readonly seed: number;
  /** Unique per stream within a database: command ids and order ids derive from it. */
  readonly prefix: string;
  readonly applyChunk: (inputs: readonly CommandInput[]) => Promise<Set<string>>;
  /** Runs after each chunk; `hint` is a random flag for callers that look only sometimes. */
  readonly afterChunk: (hint: boolean) => Promise<void>;
}

/** Runs the stream; returns how many chunks it applied. */
export async function runRandomStream(stream: RandomStream): Promise<number> {
  const { users } = stream;
  const stepArb = fc.record({
    kind: fc.constantFrom('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'set_alert'),
    user: fc.integer({ min: 0, max: users.length - 1 }),
    other: fc.integer({ min: 1, max: users.length - 1 }),
    minor: fc.integer({ min: 1, max: 20_000 }),
    pick: fc.nat(),
    endsChunk: fc.boolean(),
    hint: fc.boolean(),
  });
  const [steps] = fc.sample(fc.array(stepArb, { minLength: stream.steps, maxLength: stream.steps }), {
    numRuns: 1,
    seed: stream.seed,
  });
  const openOrders: Array<{ user: number; order: number }> = [];
  const unsettled: Array<{ id: string; user: number; minor: number }> = [];
  let chunk: CommandInput[] = [];
  let transfersThisChunk: Array<{ id: string; user: number; minor: number }> = [];
  let order = 0;
  let chunks = 0;
  for (const [i, step] of steps!.entries()) {
    const user = users[step.user]!;
    const id = `${stream.prefix}-${i}`;
    const amount = formatMinor(BigInt(step.minor));
    if (step.kind === 'deposit') chunk.push({ id, type: 'deposit', user_id: user, amount });
    if (step.kind === 'withdraw') chunk.push({ id, type: 'withdraw', user_id: user, amount });
    if (step.kind === 'set_alert') {
      // Moves no money, so it must not move the user's version either.
      chunk.push({
        id,
        type: 'set_alert',
        user_id: user,
        direction: step.pick % 2 ? 'below' : 'above',
        threshold: amount,
      });
    }
    if (step.kind === 'reserve') {
      order += 1;
      chunk.push({ id, type: 'reserve', user_id: user, service_id: 1, order_id: order, amount });
      openOrders.push({ user, order });
    }
    if ((step.kind === 'capture' || step.kind === 'release') && openOrders.length > 0) {
      const [open] = openOrders.splice(step.pick % openOrders.length, 1);
      chunk.push(
        step.kind === 'capture'
          ? { id, type: 'capture', user_id: open!.user, service_id: 1, order_id: open!.order, amount: '0.01' }
          : { id, type: 'release', user_id: open!.user, service_id: 1, order_id: open!.order },
      );
    }
    if (step.kind === 'transfer') {
      const recipient = users[(step.user + step.other) % users.length]!;
      chunk.push({ id, type: 'transfer', user_id: user, recipient_id: recipient, amount });
      transfersThisChunk.push({ id, user: recipient, minor: step.minor });
    }
    if (step.kind === 'settle' && unsettled.length > 0) {
      const [transfer] = unsettled.splice(step.pick % unsettled.length, 1);
      chunk.push({
        id: `~settle:${transfer!.id}`,
        type: 'settle',
        user_id: transfer!.user,
        amount: formatMinor(BigInt(transfer!.minor)),
      });
    }
    if (step.endsChunk || i === steps!.length - 1) {
      const applied = await stream.applyChunk(chunk);
      unsettled.push(...transfersThisChunk.filter((t) => applied.has(t.id)));
      chunk = [];
      transfersThisChunk = [];
      chunks += 1;
      await stream.afterChunk(step.hint);
    }
  }
  return chunks;
}

export interface ShownBalances {
  amount: string;
  reserved: string;
  incoming: string;
}

/**
 * Every user's balances as the balance endpoint shows them, and their versions, read in one statement with one
 * more value (`stampSql`, an SQL expression: the clock, or the last posting's time), so the two
 * belong to the same moment.
 */
export async function balancesWithStamp(
  db: TestDatabase,
  users: readonly number[],
  stampSql: string,
): Promise<{ stamp: string | null; balances: Map<number, ShownBalances>; versions: Map<number, number> }> {
  const { rows } = await db.pool.query<{
    stamp: string | null;
    owner_id: string | null;
    kind: string | null;
    balance: string;
    version: string;
  }>(
    `WITH s AS (SELECT (${stampSql}) AS stamp)
     SELECT s.stamp, a.owner_id, a.kind, a.balance, a.version FROM s
     LEFT JOIN accounts a ON a.owner_id = ANY($1::bigint[]) AND a.kind IN ('user_available', 'user_reserved', 'user_incoming')`,
    [users],
  );
  const of = (user: number, kind: string) =>
    BigInt(rows.find((r) => Number(r.owner_id) === user && r.kind === kind)?.balance ?? '0');
  const view = (u: number): ShownBalances => ({
    amount: formatMinor(of(u, 'user_available') + of(u, 'user_incoming')),
    reserved: formatMinor(of(u, 'user_reserved')),
    incoming: formatMinor(of(u, 'user_incoming')),
  });
  const version = (u: number) =>
    Number(rows.find((r) => Number(r.owner_id) === u && r.kind === 'user_available')?.version ?? 0);
  return {
    stamp: rows[0]?.stamp ?? null,
    balances: new Map(users.map((u) => [u, view(u)])),
    versions: new Map(users.map((u) => [u, version(u)])),
  };
}

/** The time format PostgreSQL renders instants in for these tests: UTC with microseconds. */
export const UTC_MICROS_SQL = (expression: string) =>
  `to_char(${expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
