import { describe, expect, it } from 'vitest';
import { InternalCommandSigner } from '../../src/commands/internal-proof.ts';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const OLD = 'the-previous-secret-of-thirty-two-characters';
const settle = { id: '~settle:t-1', type: 'settle' as const, user_id: 7, amount: 1_050n };
const expire = { id: '~expire:r-1', type: 'expire' as const, user_id: 7, service_id: 3, order_id: 11 };

describe('InternalCommandSigner', () => {
  it('accepts its own proof over exactly the command it signed', () => {
    const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
    const proof = signer.sign(settle);
    expect(signer.verify(settle, proof)).toBe(true);
    expect(signer.verify(settle, Buffer.from(proof))).toBe(true);
  });

  it.each([
    ['the amount', { ...settle, amount: 1_051n }],
    ['the recipient', { ...settle, user_id: 8 }],
    ['the source transfer', { ...settle, id: '~settle:t-2' }],
  ])('refuses the proof when %s changed', (_, changed) => {
    const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
    expect(signer.verify(changed, signer.sign(settle))).toBe(false);
  });

  it('accepts its own proof over an expire, and refuses it over a settle or any other expire', () => {
    const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
    const proof = signer.sign(expire);
    expect(signer.verify(expire, proof)).toBe(true);
    const changed = {
      'the user': { ...expire, user_id: 8 },
      'the service': { ...expire, service_id: 4 },
      'the order': { ...expire, order_id: 12 },
      'the source reserve': { ...expire, id: '~expire:r-2' },
    };
    for (const [what, other] of Object.entries(changed)) expect(signer.verify(other, proof), what).toBe(false);
    expect(signer.verify(settle, proof)).toBe(false);
    expect(signer.verify(expire, signer.sign(settle))).toBe(false);
  });

  it('refuses a missing, malformed or foreign proof', () => {
    const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
    const foreign = new InternalCommandSigner({
      secret: 'someone-elses-secret-of-32-characters!!',
      acceptedSecrets: [],
    });
    for (const proof of [
      undefined,
      '',
      'v1',
      'v1..',
      'v2.x.y',
      `v1.${signer.sign(settle).split('.')[1]}.AAAA`,
      foreign.sign(settle),
    ]) {
      expect(signer.verify(settle, proof), String(proof)).toBe(false);
    }
  });

  it('during a rotation signs with the new key and still accepts the previous one', () => {
    const before = new InternalCommandSigner({ secret: OLD, acceptedSecrets: [] });
    const rotating = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [OLD] });
    const after = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
    expect(rotating.verify(settle, before.sign(settle))).toBe(true);
    expect(after.verify(settle, rotating.sign(settle))).toBe(true);
    expect(after.verify(settle, before.sign(settle))).toBe(false);
  });

  it('accepts every listed older key, not just one: a replay of a log that saw three rotations', () => {
    const generations = ['a', 'b', 'c', 'd'].map((c) => `${c.repeat(8)}-internal-command-secret-generation`);
    const signedBy = generations.map((secret) =>
      new InternalCommandSigner({ secret, acceptedSecrets: [] }).sign(settle),
    );
    const replay = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: generations });
    expect(signedBy.map((proof) => replay.verify(settle, proof))).toEqual([true, true, true, true]);
    // A key that is not listed is refused.
    const unlisted = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: generations.slice(1) });
    expect(unlisted.verify(settle, signedBy[0])).toBe(false);
  });
});
