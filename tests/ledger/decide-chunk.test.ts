/**
 * A chunk decided in memory (decide-chunk.ts), with no database: what it writes, and what it
 * expects the database to hold, follow from the state it was given and the commands alone.
 */
import { describe, expect, it } from 'vitest';
import { commandFingerprint, createCommandSchema } from '../../src/commands/schema.ts';
import { loadConfig } from '../../src/config.ts';
import { available, EXTERNAL_ACCOUNT, ledgerLimitsOf, reserved } from '../../src/ledger/core.ts';
import { GENESIS_HASH_HEX, linkHash } from '../../src/ledger/chain.ts';
import { decideChunk, type LoadedState } from '../../src/ledger/decide-chunk.ts';

const config = loadConfig({ ALLOW_DEV_SECRETS: 'true' });
const schema = createCommandSchema(config.limits);
const LIMITS = ledgerLimitsOf(config.limits);
const NOW = new Date('2026-12-07T10:00:00Z');

function item(input: Record<string, unknown>, offset: number) {
  const command = schema.parse(input);
  return { command, fingerprint: commandFingerprint(command), partition: 2, offset: String(offset), principal: 'test' };
}

function state(balance: bigint, version: bigint, chainHash: string | null = null): LoadedState {
  const account = (key: string, id: number, b: bigint) => ({
    id,
    key: key as ReturnType<typeof available>,
    balance: b,
    version,
    alertCount: 0,
    frozenReason: null,
    chainHash,
  });
  return {
    stored: new Map(),
    accounts: new Map([
      [available(1), account(available(1), 10, balance)],
      [reserved(1), account(reserved(1), 11, 0n)],
      [EXTERNAL_ACCOUNT, account(EXTERNAL_ACCOUNT, 1, 0n)],
    ]),
    reservations: { open: [], expired: [], captured: [] },
    alerts: [],
  };
}

describe('a chunk decided in memory', () => {
  const items = [
    item({ id: 'd1', type: 'deposit', user_id: 1, amount: '5.00' }, 1),
    item({ id: 'w1', type: 'withdraw', user_id: 1, amount: '19.00' }, 2),
    item({ id: 'w2', type: 'withdraw', user_id: 1, amount: '1.00' }, 3),
  ];

  it('decides each command on the state the ones before it left, and versions the ones that moved money', () => {
    const decided = decideChunk(items, state(500n, 7n), LIMITS, NOW);
    expect(decided.outcomes.map((o) => (o.kind === 'new' ? o.decision.code : o.kind))).toEqual([
      'ok',
      'insufficient_funds',
      'ok',
    ]);
    expect(decided.commit.commands.map((c) => [c.id, c.status])).toEqual([
      ['d1', 'applied'],
      ['w1', 'rejected'],
      ['w2', 'applied'],
    ]);
    expect(decided.commit.postings.map((p) => [p.commandId, p.amount, p.versionAfter])).toEqual([
      ['d1', 500n, 8n],
      ['w2', 100n, 9n],
    ]);
    expect([...decided.events.keys()]).toEqual(['d1', 'w2']);
    expect(decided.versions).toEqual(new Map([[1, 9n]]));
  });

  it("links each applied command's events to the user's chain, from the head it was given", () => {
    const head = 'ab'.repeat(32);
    const decided = decideChunk(items, state(500n, 7n, head), LIMITS, NOW);
    const [d1] = decided.events.get('d1')!;
    const [w2] = decided.events.get('w2')!;
    expect(d1!.hash).toBe(linkHash(head, [d1!.payload]));
    expect(w2!.hash).toBe(linkHash(d1!.hash!, [w2!.payload]));
    expect(decided.chainHeads).toEqual(new Map([[1, w2!.hash]]));
    // A user without a chain starts from 32 zero bytes.
    const fresh = decideChunk(items, state(500n, 7n), LIMITS, NOW).events.get('d1')![0]!;
    expect(fresh.hash).toBe(linkHash(GENESIS_HASH_HEX, [fresh.payload]));
  });

  it('expects every user account it read to hold what it read, and leaves each at its new balance', () => {
    const decided = decideChunk(items, state(500n, 7n), LIMITS, NOW);
    expect(decided.commit.userAccounts).toEqual([
      {
        id: 10,
        key: available(1),
        expectedBalance: 500n,
        expectedVersion: 7n,
        balance: 900n,
        version: 9n,
        chainHash: decided.chainHeads.get(1),
      },
      {
        id: 11,
        key: reserved(1),
        expectedBalance: 0n,
        expectedVersion: null,
        balance: 0n,
        version: null,
        chainHash: null,
      },
    ]);
    // The external account is shared: a delta by id, never an absolute balance.
    expect(decided.commit.sharedDeltas).toEqual(new Map([[1, -400n]]));
  });

  it('writes only rejections, and moves no version, when nothing can apply', () => {
    const decided = decideChunk([items[1]!], state(0n, 3n), LIMITS, NOW);
    expect(decided.commit.postings).toEqual([]);
    expect(decided.commit.userAccounts[0]).toMatchObject({ expectedVersion: 3n, version: 3n, balance: 0n });
    expect(decided.commit.sharedDeltas.size).toBe(0);
  });
});
