/**
 * Deposits and withdrawals that name their service (sql/0028_reconciliation.sql): the references
 * a chunk's commands name that are taken already, read before it decides, and the rows its write
 * adds (through ledger_commit_chunk). A reference is unique per service and user: the decision
 * reads only the user's own rows, so it depends on the user's partition alone and a replay decides
 * it the same. The unique index is the second guard.
 */
import type pg from 'pg';
import type { Command } from '../../commands/schema.ts';
import { externalRefKey } from '../state.ts';

const SQL_TAKEN = `
  SELECT p.service_id::text, p.user_id::text, p.external_ref
  FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(service_id, user_id, external_ref)
  JOIN external_payments p ON p.service_id = k.service_id AND p.user_id = k.user_id AND p.external_ref = k.external_ref`;

/** The taken references (externalRefKey) among those the commands name; no query when they name none. */
export async function takenExternalRefs(
  db: pg.Pool | pg.PoolClient,
  commands: readonly Command[],
): Promise<Set<string>> {
  const named = commands.flatMap((c) =>
    (c.type === 'deposit' || c.type === 'withdraw') && c.service_id !== undefined && c.external_ref !== undefined
      ? [{ serviceId: c.service_id, userId: c.user_id, ref: c.external_ref }]
      : [],
  );
  if (named.length === 0) return new Set();
  const { rows } = await db.query<{ service_id: string; user_id: string; external_ref: string }>({
    name: 'ledger_taken_external_refs',
    text: SQL_TAKEN,
    values: [named.map((n) => n.serviceId), named.map((n) => n.userId), named.map((n) => n.ref)],
  });
  return new Set(rows.map((r) => externalRefKey(Number(r.service_id), Number(r.user_id), r.external_ref)));
}
