/**
 * The ledger's SQL, one module per thing it stores. A chunk whose state the consumer holds is
 * written with one call (commit-chunk.ts), its one round trip; a chunk read cold loads what it
 * misses with another (load-chunk.ts); the fallback path loads under lock and writes inside
 * BEGIN ... COMMIT (and reads for repeats, when it has any).
 */
export * from './accounts.ts';
export * from './commit-chunk.ts';
export * from './commands.ts';
export * from './events.ts';
export * from './external-payments.ts';
export * from './load-chunk.ts';
export * from './transactions.ts';
