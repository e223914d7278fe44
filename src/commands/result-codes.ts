/**
 * The closed sets of the command contract that replies carry: every result code a command can
 * be answered with (with its default message), and every kind of history row.
 */
/**
 * Every outcome a command can have, with its default message. Within one command type the
 * checks run in a fixed order, so the first that applies is the one reported.
 */
export const RESULT_CODES = {
  ok: 'The command was applied.',
  amount_too_large: 'The amount is larger than the largest amount one command may move (AMOUNT_MINOR_MAX).',
  insufficient_funds: 'The available balance is lower than the amount.',
  reservation_exists: 'An open reservation already exists for this user, service and order.',
  reservation_not_found: 'No open reservation exists for this user, service and order.',
  amount_exceeds_reservation: 'The amount is larger than the reserved amount.',
  reservation_expired: 'The reservation expired: its money is back in the available balance.',
  same_account: 'The sender and the recipient are the same user.',
  balance_limit_exceeded: 'The deposit would take the balance past the largest balance allowed.',
  alert_limit_exceeded: 'The user already has as many threshold alerts as allowed (ALERTS_PER_USER_MAX).',
  alert_not_found: 'The user has no threshold alert with this id.',
  order_not_captured: 'The order is not captured: only the captured part of an order can be refunded.',
  refund_exceeds_capture: 'Refunds of this order would add up to more than was captured.',
  account_frozen: 'The account is frozen: money cannot leave it until it is unfrozen.',
  account_already_frozen: 'The account is already frozen.',
  account_not_frozen: 'The account is not frozen.',
  external_ref_reused: 'The user already has a deposit or withdrawal of this service with this external reference.',
  idempotency_key_reused: 'This command id was already used for a different command.',
  invalid_command: 'The command is not valid.',
  unprocessable: 'The command is valid but could not be stored; it will not be retried.',
} as const;
export type ResultCode = keyof typeof RESULT_CODES;

export const TRANSACTION_TYPES = [
  'deposit',
  'withdraw',
  'reserve',
  'capture',
  'release',
  'transfer_out',
  'transfer_in',
  'expire',
  'refund',
] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];
