/**
 * The `commands` table: which commands were decided, and how. Its primary key is what makes a
 * redelivered command a no-op.
 */
import type pg from 'pg';

type Queryable = pg.PoolClient | pg.Pool;

export interface StoredCommand {
  readonly id: string;
  readonly fingerprint: string;
  readonly status: 'applied' | 'rejected';
  readonly code: string;
  readonly message: string;
}

const SQL_FIND_COMMANDS = `
  SELECT id, fingerprint, status, code, message FROM commands WHERE id = ANY($1::text[])`;

export async function findCommands(db: Queryable, ids: readonly string[]): Promise<Map<string, StoredCommand>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<StoredCommand>({
    name: 'ledger_find_commands',
    text: SQL_FIND_COMMANDS,
    values: [ids],
  });
  return new Map(rows.map((row) => [row.id, row]));
}

export interface NewCommandRow {
  readonly id: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly userId: number;
  readonly status: 'applied' | 'rejected';
  readonly code: string;
  readonly message: string;
  readonly partition: number | null;
  readonly offset: string | null;
  readonly principal: string;
}

const SQL_INSERT_COMMAND_IF_NEW = `
  INSERT INTO commands (id, fingerprint, type, user_id, status, code, message, source_partition, source_offset, principal)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (id) DO NOTHING`;

/** Inserts one command row on its own (no postings); false if the id was already decided. */
export async function insertCommandIfNew(db: Queryable, row: NewCommandRow): Promise<boolean> {
  const result = await db.query({
    name: 'ledger_insert_command_if_new',
    text: SQL_INSERT_COMMAND_IF_NEW,
    values: [
      row.id,
      row.fingerprint,
      row.type,
      row.userId,
      row.status,
      row.code,
      row.message,
      row.partition,
      row.offset,
      row.principal,
    ],
  });
  return result.rowCount === 1;
}
