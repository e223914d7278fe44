/**
 * The ledger's SQL, one module per thing it stores. A chunk loads what it needs with a few
 * set-based statements (commands, accounts, reservations, alerts) and writes everything it
 * decided with one call (write-chunk.ts), so a chunk of any size costs a handful of round trips.
 */
export * from './accounts.ts';
export * from './alerts.ts';
export * from './commands.ts';
export * from './events.ts';
export * from './reservations.ts';
export * from './transactions.ts';
export * from './write-chunk.ts';
