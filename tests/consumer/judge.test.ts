import { describe, expect, it } from 'vitest';
import { settleIdOf } from '../../src/commands/ids.ts';
import type { Command } from '../../src/commands/schema.ts';
import { judge } from '../../src/consumer/judge.ts';
import type { Candidate } from '../../src/consumer/pipeline-context.ts';
import { type Facts, NO_FACTS } from '../../src/consumer/prefetch.ts';
import type { Screened } from '../../src/consumer/screen.ts';
import { legKey } from '../../src/consumer/settle-check.ts';
import type { KafkaMessage } from '../../src/kafka/client.ts';
import type { StoredCommand } from '../../src/ledger/store/index.ts';

function candidate(offset: number, command: Command, fingerprint = `fp-${command.id}`): Candidate {
  return {
    item: { command, fingerprint, partition: 0, offset: String(offset), principal: 'service:1', messageTimeMs: null },
    message: {
      offset: String(offset),
      value: null,
      key: null,
      timestamp: '0',
      attributes: 0,
      headers: {},
    } as KafkaMessage,
  };
}

const deposit = (id: string) => ({ id, type: 'deposit', user_id: 5, amount: 100n }) as Command;
const settle = (id: string, userId: number, amount: bigint) =>
  ({ id, type: 'settle', user_id: userId, amount }) as Command;
const screened = (parts: Partial<Screened>): Screened => ({
  candidates: [],
  suspects: [],
  asides: [],
  misrouted: [],
  ...parts,
});
const stored = (fingerprint: string) => ({ fingerprint, status: 'applied' }) as StoredCommand;
const offsets = (candidates: readonly Candidate[]) => candidates.map((c) => c.message.offset);

describe('judge', () => {
  it('admits a suspect that is a copy of a decided command, in offset order, and sets a forgery aside', () => {
    const copy = candidate(1, deposit('old'));
    const forgery = candidate(3, deposit('new'));
    const facts: Facts = { ...NO_FACTS, decidedSuspects: new Map([['old', stored('fp-old')]]) };
    const judged = judge(
      'live',
      screened({
        candidates: [candidate(2, deposit('plain'))],
        suspects: [
          { candidate: copy, reason: 'no proof' },
          { candidate: forgery, reason: 'no proof' },
        ],
      }),
      facts,
    );
    expect(offsets(judged.candidates)).toEqual(['1', '2']);
    expect(judged.asides).toMatchObject([{ kind: 'forged', reason: { code: 'invalid_command', message: 'no proof' } }]);
  });

  it('sets aside a suspect whose id was decided with another body', () => {
    const facts: Facts = { ...NO_FACTS, decidedSuspects: new Map([['old', stored('fp-other')]]) };
    const judged = judge(
      'live',
      screened({ suspects: [{ candidate: candidate(1, deposit('old')), reason: 'x' }] }),
      facts,
    );
    expect(judged.candidates).toEqual([]);
    expect(judged.asides).toHaveLength(1);
  });

  it('refuses, live, a settle of a transfer never applied; a replay lets its proof decide', () => {
    const input = screened({ candidates: [candidate(1, settle(settleIdOf('t-1'), 9, 50n))] });
    expect(judge('live', input, NO_FACTS).asides).toMatchObject([
      { kind: 'forged', reason: { message: 'The settle names a transfer that was never applied.' } },
    ]);
    expect(offsets(judge('replay', input, NO_FACTS).candidates)).toEqual(['1']);
  });

  it('refuses a settle that does not move what its leg credited', () => {
    const facts: Facts = { ...NO_FACTS, credits: new Map([['t-1', [{ userId: 9, amount: 50n }]]]) };
    const judged = judge(
      'live',
      screened({
        candidates: [candidate(1, settle(settleIdOf('t-1'), 9, 51n)), candidate(2, settle(settleIdOf('t-1'), 8, 50n))],
      }),
      facts,
    );
    expect(judged.candidates).toEqual([]);
    expect(judged.asides.map((a) => a.reason.message)).toEqual([
      'The settle does not match the transfer it settles (recipient or amount).',
      'The settle does not match the transfer it settles (recipient or amount).',
    ]);
  });

  it('settles a leg once: the first of two names wins, and a leg settled before refuses both', () => {
    const credits = new Map([['t-1', [{ userId: 9, amount: 50n }]]]);
    const bare = candidate(1, settle(settleIdOf('t-1'), 9, 50n));
    const named = candidate(2, settle(settleIdOf('t-1', 9), 9, 50n));
    const once = judge('live', screened({ candidates: [named, bare] }), { ...NO_FACTS, credits });
    expect(offsets(once.candidates)).toEqual(['1']);
    expect(once.asides.map((a) => a.reason.message)).toEqual([
      `The leg is already settled by ${settleIdOf('t-1')}: a leg has one settle.`,
    ]);
    const settledBy = new Map([[legKey('t-1', 9), settleIdOf('t-1', 9)]]);
    const before = judge('live', screened({ candidates: [bare] }), { ...NO_FACTS, credits, settledBy });
    expect(before.candidates).toEqual([]);
    // The facts are the prefetch's: judging does not change them.
    expect([...settledBy]).toEqual([[legKey('t-1', 9), settleIdOf('t-1', 9)]]);
  });
});
