import { describe, expect, it } from 'vitest';
import { failureKind } from '../src/failures.ts';
import { LedgerInvariantError } from '../src/ledger/state.ts';

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });

describe('failureKind', () => {
  it.each([
    ['22021', 'a NUL byte'],
    ['22003', 'a BIGINT overflow'],
    ['23514', 'a CHECK violation'],
    ['23505', 'a unique violation (once its retries are spent)'],
    ['54000', 'a program limit'],
    ['LI001', "a ledger invariant the write would break (the ledger's own functions raise it)"],
  ])('calls SQLSTATE %s (%s) deterministic', (code) => {
    expect(failureKind(pgError(code))).toBe('deterministic');
  });

  it.each([
    ['40001', 'a serialization failure'],
    ['40P01', 'a deadlock'],
    ['57P01', 'an administrator shutdown'],
    ['53100', 'a full disk'],
    ['42P01', 'a missing table'],
    ['42501', 'a revoked privilege'],
    ['08006', 'a connection failure'],
    ['P0001', "a RAISE of someone else's trigger or extension"],
  ])('calls SQLSTATE %s (%s) transient: the partition waits, nothing is skipped', (code) => {
    expect(failureKind(pgError(code))).toBe('transient');
  });

  it('calls socket errors and unknown errors transient', () => {
    expect(failureKind(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe('transient');
    expect(failureKind(new TypeError('a bug'))).toBe('transient');
    expect(failureKind('a string')).toBe('transient');
  });

  it('takes the kind an error carries itself', () => {
    expect(failureKind(new LedgerInvariantError('negative'))).toBe('deterministic');
  });
});
