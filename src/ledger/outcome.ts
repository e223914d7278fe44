/**
 * The outcome of a command as callers see it: on the reply topic, from polling, and (reshaped)
 * in HTTP answers. Amounts are exact 2-decimal strings.
 */
import { formatMinor } from '../commands/money.ts';

export type { BalanceView, CommandReply, TransactionView } from '../commands/reply-schema.ts';
import type { BalanceView, TransactionView } from '../commands/reply-schema.ts';
import type { TransactionType } from '../commands/result-codes.ts';

export function balanceView(availableMinor: bigint, reservedMinor: bigint): BalanceView {
  return { available: formatMinor(availableMinor), reserved: formatMinor(reservedMinor) };
}

/** Converts a row as pg returns it (BIGINTs as strings) to the wire shape. */
export function transactionView(row: {
  id: string | number;
  command_id: string;
  user_id: string | number;
  amount: string | bigint;
  transaction_type: string;
  service_id: string | number | null;
  order_id: string | number | null;
  counterparty_id: string | number | null;
  comment: string | null;
  created_at: Date;
}): TransactionView {
  return {
    id: Number(row.id),
    user_id: Number(row.user_id),
    amount: formatMinor(BigInt(row.amount)),
    // The database's CHECK allows only the contract's types.
    transaction_type: row.transaction_type as TransactionType,
    created_at: row.created_at.toISOString(),
    service_id: nullableNumber(row.service_id),
    order_id: nullableNumber(row.order_id),
    counterparty_id: nullableNumber(row.counterparty_id),
    comment: row.comment,
    command_id: row.command_id,
  };
}

function nullableNumber(value: string | number | null): number | null {
  return value === null ? null : Number(value);
}
