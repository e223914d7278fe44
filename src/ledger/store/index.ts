/**
 * The ledger's SQL, one module per thing it stores. A chunk loads what it needs with one call
 * (load-chunk.ts) and writes everything it decided with another (write-chunk.ts), so a chunk of
 * any size costs four round trips: BEGIN, load, write, COMMIT (and reads for its repeats and
 * transfers' recipients, when it has any).
 */
export * from './accounts.ts';
export * from './commands.ts';
export * from './events.ts';
export * from './load-chunk.ts';
export * from './orders-and-freezes.ts';
export * from './transactions.ts';
export * from './write-chunk.ts';
