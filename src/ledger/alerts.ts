/**
 * Threshold alerts, pure: which of a user's alerts a new available balance crosses. An alert is
 * "past" while the balance is beyond its threshold (strictly below it for `below`, strictly above
 * it for `above`); it fires when a command takes it from not past to past, so once per crossing,
 * and it is armed again when the balance comes back. Everything here depends only on the
 * balances the user's own partition decides, so a replay fires the same alerts at the same commands.
 */
import type { Alert } from './core.ts';

export interface AlertState extends Alert {
  /** Whether the available balance is past the threshold after the latest command. */
  past: boolean;
}

export function isPast(alert: Alert, availableBalance: bigint): boolean {
  return alert.direction === 'below' ? availableBalance < alert.threshold : availableBalance > alert.threshold;
}

/**
 * Moves each alert to the state `availableBalance` puts it in; returns the ones that fired (went
 * from not past to past) and the ones whose state changed at all, in the order given.
 */
export function crossAlerts(
  alerts: readonly AlertState[],
  availableBalance: bigint,
): { fired: AlertState[]; changed: AlertState[] } {
  const fired: AlertState[] = [];
  const changed: AlertState[] = [];
  for (const alert of alerts) {
    const past = isPast(alert, availableBalance);
    if (past === alert.past) continue;
    alert.past = past;
    changed.push(alert);
    if (past) fired.push(alert);
  }
  return { fired, changed };
}
