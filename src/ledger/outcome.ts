/**
 * The outcome of a command as callers see it: on the reply topic, from polling, and (reshaped)
 * in HTTP answers. Amounts are exact 2-decimal strings.
 */
import { formatMinor } from '../commands/money.ts';
import type { ResultCode } from './core.ts';

export interface TransactionView {
  readonly id: number;
  readonly user_id: number;
  readonly amount: string;
  readonly transaction_type: string;
  readonly created_at: string;
  readonly service_id: number | null;
  readonly order_id: number | null;
  readonly counterparty_id: number | null;
  readonly comment: string | null;
  readonly command_id: string;
}

export interface BalanceView {
  readonly available: string;
  readonly reserved: string;
}

export interface CommandReply {
  readonly command_id: string;
  readonly status: 'applied' | 'rejected';
  readonly code: ResultCode;
  readonly message: string;
  /** True when this command id had already been decided; nothing was applied this time. */
  readonly duplicate: boolean;
  /**
   * The fingerprint of the command this reply answers (null when the message was not a valid
   * command), so a waiter accepts only the reply to the command it sent.
   */
  readonly fingerprint: string | null;
  readonly transactions: readonly TransactionView[];
  /** Balances of every user the command touched, keyed by user id. */
  readonly balances: Readonly<Record<string, BalanceView>>;
}

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
    transaction_type: row.transaction_type,
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
