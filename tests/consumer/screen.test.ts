import { describe, expect, it } from 'vitest';
import { InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { httpScopedId, settleIdOf } from '../../src/commands/ids.ts';
import { KeyRing } from '../../src/commands/key-ring.ts';
import { PrincipalAttestation } from '../../src/commands/principal-proof.ts';
import { replyTopicPolicyOf } from '../../src/commands/reply-topics.ts';
import {
  type Command,
  commandFingerprint,
  consumerCommandSchema,
  serializeCommand,
} from '../../src/commands/schema.ts';
import { loadConfig } from '../../src/config.ts';
import type { ParkedOffset } from '../../src/consumer/parking.ts';
import { type ScreenContext, screen } from '../../src/consumer/screen.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import type { KafkaMessage } from '../../src/kafka/client.ts';

const config = loadConfig({
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  JWT_SECRET: 'unit-test-jwt-secret-0123456789abcdefghij',
  INTERNAL_COMMAND_SECRET: 'unit-test-internal-command-secret-012345678',
  ANCHOR_SIGNING_KEY: 'unit-test-anchor-signing-key-0123456789abcd',
});
const keys = new KeyRing(config.internalCommands);
const signer = new InternalCommandSigner(keys);
const attestation = new PrincipalAttestation(keys);
const ctx: ScreenContext = {
  schema: consumerCommandSchema(),
  replyTopics: replyTopicPolicyOf(config.topics),
  signer,
  attestation,
};
const source = { topic: config.topics.commands, partition: 0 };
const NO_PARKS = new Map<string, ParkedOffset>();

function message(offset: number, value: string | null, headers: Record<string, string> = {}): KafkaMessage {
  return {
    key: null,
    value: value === null ? null : Buffer.from(value),
    offset: String(offset),
    timestamp: '1765000000000',
    attributes: 0,
    headers,
  } as KafkaMessage;
}

/** A command as the gateway publishes it: attested as `principal`'s. */
function attested(offset: number, command: Command, principal: string): KafkaMessage {
  const headers = attestation.headers({ id: command.id, fingerprint: commandFingerprint(command) }, principal);
  return message(offset, serializeCommand(command), headers);
}

const deposit = (id: string, userId = 5): Command =>
  ({ id, type: 'deposit', user_id: userId, amount: 1_000n }) as Command;

describe('screen', () => {
  it('makes a candidate of an attested command, with its principal, partition and offset', () => {
    const screened = screen(ctx, source, [attested(7, deposit('d-1'), 'service:1')], NO_PARKS);
    expect(screened.asides).toEqual([]);
    expect(screened.suspects).toEqual([]);
    expect(screened.candidates.map((c) => c.item)).toMatchObject([
      { command: { id: 'd-1', amount: 1_000n }, principal: 'service:1', partition: 0, offset: '7' },
    ]);
  });

  it('sets aside what is not a command, answering only what carries a usable id', () => {
    const invalid = JSON.stringify({ id: 'bad-1', type: 'deposit', user_id: 5, amount: '-1' });
    const screened = screen(ctx, source, [message(1, '{"id":'), message(2, invalid), message(3, null)], NO_PARKS);
    expect(screened.candidates).toEqual([]);
    expect(screened.asides.map((a) => [a.message.offset, a.kind, a.reason.code, a.reply?.reply.command_id])).toEqual([
      ['1', 'invalid', 'not_json', undefined],
      ['2', 'invalid', 'invalid_command', 'bad-1'],
      ['3', 'invalid', 'empty_message', undefined],
    ]);
    expect(screened.asides[1]!.reply!.reply).toMatchObject({ status: 'rejected', code: 'invalid_command' });
  });

  it('sets a parked offset aside without reading it, naming who parked it and why', () => {
    const parked = new Map([['4', { parkedBy: 'ops:ana', reason: 'poison' } as ParkedOffset]]);
    const screened = screen(ctx, source, [attested(4, deposit('d-4'), 'service:1')], parked);
    expect(screened.candidates).toEqual([]);
    expect(screened.asides).toMatchObject([
      { kind: 'parked', reason: { code: 'parked', message: 'Parked by ops:ana: poison' } },
    ]);
  });

  it('suspects a settle whose proof does not hold, and takes one whose proof does', () => {
    const settle = { id: settleIdOf('t-1'), type: 'settle', user_id: 9, amount: 500n } as Command;
    const forged = message(1, serializeCommand(settle), { 'x-internal-proof': 'v2.k.AAAA' });
    const genuine = message(2, serializeCommand(settle), {
      'x-internal-proof': signer.sign(settle as Parameters<typeof signer.sign>[0]),
    });
    const screened = screen(ctx, source, [forged, genuine], NO_PARKS);
    expect(screened.suspects.map((s) => s.candidate.message.offset)).toEqual(['1']);
    expect(screened.candidates.map((c) => [c.message.offset, c.item.principal])).toEqual([['2', 'consumer']]);
  });

  it("suspects a ~http: id attested for anyone but the id's own user", () => {
    const id = httpScopedId(5, 'key-1');
    const own = attested(1, deposit(id, 5), 'user:5');
    const squatted = attested(2, deposit(id, 5), 'service:6');
    const screened = screen(ctx, source, [own, squatted], NO_PARKS);
    expect(screened.candidates.map((c) => c.message.offset)).toEqual(['1']);
    expect(screened.suspects.map((s) => [s.candidate.message.offset, s.reason])).toMatchObject([
      ['2', expect.stringContaining('Idempotency-Keys')],
    ]);
  });

  it('names a command on the wrong partition, and still decides it', () => {
    const partitions = 6;
    const command = deposit('d-9', 77);
    const home = partitionOfKey('77', partitions);
    const elsewhere = { ...source, partition: (home + 1) % partitions };
    const screened = screen(
      { ...ctx, partitionCount: () => partitions },
      elsewhere,
      [attested(1, command, 'service:1')],
      NO_PARKS,
    );
    expect(screened.misrouted).toMatchObject([{ command: { id: 'd-9' }, offset: '1', expected: home }]);
    expect(screened.candidates).toHaveLength(1);
    const atHome = screen(
      { ...ctx, partitionCount: () => partitions },
      { ...source, partition: home },
      [attested(1, command, 'service:1')],
      NO_PARKS,
    );
    expect(atHome.misrouted).toEqual([]);
  });
});
