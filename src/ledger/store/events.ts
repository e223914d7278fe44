/** Balance events as stored: written with their chunk, and read again to re-send a repeat's. */
import type pg from 'pg';

type Queryable = pg.PoolClient | pg.Pool;

export interface BalanceEventRow {
  readonly userId: number;
  readonly sequence: bigint;
  /** 0 for the balance event, 1, 2, ... for the threshold_crossed events the same command fired. */
  readonly part: number;
  readonly commandId: string;
  readonly payload: string;
  /** The link's hash (ledger/chain.ts), as hex, on the balance event (part 0); null on the other parts. */
  readonly hash: string | null;
}

const SQL_BALANCE_EVENTS_OF_COMMANDS = `
  SELECT user_id, sequence, part, command_id, payload, encode(hash, 'hex') AS hash FROM balance_events
  WHERE command_id = ANY($1::text[]) ORDER BY user_id, sequence, part`;

/** The rows as one JSON array; each payload is already JSON text (events.ts), so it goes in as it is. */
export function eventRowsJson(events: readonly BalanceEventRow[]): string {
  const rows = events.map(
    (e) =>
      `{"user_id":${e.userId},"sequence":${e.sequence},"part":${e.part},"command_id":${JSON.stringify(e.commandId)},"payload":${e.payload},"hash":${e.hash === null ? 'null' : `"${e.hash}"`}}`,
  );
  return `[${rows.join(',')}]`;
}

/** The stored events of commands decided earlier, to send again with their repeats. */
export async function balanceEventsOfCommands(
  db: Queryable,
  commandIds: readonly string[],
): Promise<BalanceEventRow[]> {
  if (commandIds.length === 0) return [];
  const { rows } = await db.query<{
    user_id: string;
    sequence: string;
    part: number;
    command_id: string;
    payload: string;
    hash: string | null;
  }>({
    name: 'ledger_balance_events_of_commands',
    text: SQL_BALANCE_EVENTS_OF_COMMANDS,
    values: [commandIds],
  });
  return rows.map((r) => ({
    userId: Number(r.user_id),
    sequence: BigInt(r.sequence),
    part: r.part,
    commandId: r.command_id,
    payload: r.payload,
    hash: r.hash,
  }));
}
