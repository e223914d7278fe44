/**
 * Anchors made by the consumer's task over a live run: the chains the consumer wrote through the
 * cached write path, an anchor stored when the broker could not take it, and that anchor
 * published by the next look, exactly once, with a signature the public key verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorSigner, verifyAnchorSignature } from '../../src/ledger/anchor-signing.ts';
import { anchorMessage } from '../../src/ledger/chain.ts';
import { ANCHOR_LOCK_KEY, createAnchor } from '../../src/ledger/store/anchors.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { PRODUCER_OPTIONS, type Producer } from '../../src/kafka/client.ts';
import { anchorIfDue, anchorRecord, publishAnchors } from '../../src/consumer/anchor-task.ts';
import { publish } from '../helpers/commands.ts';
import { eventually, startStack, uniqueSuffix, type RunningStack } from '../helpers/stack.ts';

const USERS = 40;
const DEPOSITS_EACH = 5;

describe('the anchor task', () => {
  let stack: RunningStack;
  let producer: Producer;

  beforeAll(async () => {
    stack = await startStack({ anchors: { intervalS: 0 } });
    producer = stack.kafka.producer(PRODUCER_OPTIONS);
    await producer.connect();
    const deposits = Array.from({ length: USERS * DEPOSITS_EACH }, (_, i) => ({
      id: `dep-${i}`,
      type: 'deposit' as const,
      user_id: (i % USERS) + 1,
      amount: '1.00',
      comment: `deposit ${i}`,
    }));
    await publish(stack.kafka, stack.config.topics.commands, deposits);
    await eventually(
      async () => {
        const { rows } = await stack.db.pool.query("SELECT count(*)::int AS n FROM commands WHERE status = 'applied'");
        return rows[0].n === deposits.length ? true : undefined;
      },
      60_000,
      'every deposit applied',
    );
  });
  afterAll(async () => {
    await producer?.disconnect();
    await stack?.stop();
  });

  async function readAnchors(count: number): Promise<string[]> {
    const values: string[] = [];
    const consumer = stack.kafka.consumer({ groupId: `anchors-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: stack.config.topics.anchors, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void values.push(String(message.value)) });
      const deadline = Date.now() + 15_000;
      while (values.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      // Copies that arrive late must be counted too.
      await new Promise((r) => setTimeout(r, 1_000));
      return values;
    } finally {
      await consumer.disconnect();
    }
  }

  it('stores an anchor the broker did not take, and the next look publishes it once', async () => {
    const signer = anchorSigner(stack.config.anchors.signingKey);
    const send = async (messages: readonly { key: string | Buffer | null; value: string | Buffer | null }[]) => {
      await producer.send({ topic: stack.config.topics.anchors, acks: -1, messages: [...messages] });
    };
    // The process dies between storing the anchor and publishing it: the send never happens.
    const made = await anchorIfDue(stack.db.pool, signer, 3_600, async () => {
      throw new Error('the process died before the send');
    }).catch(() => null);
    expect(made).toBeNull();
    const stored = await stack.db.pool.query('SELECT id, users, published_at FROM anchors');
    expect(stored.rows).toEqual([{ id: '1', users: String(USERS), published_at: null }]);
    // An hour has not passed: the next look makes no anchor, and sends the stored one.
    expect(await anchorIfDue(stack.db.pool, signer, 3_600, send)).toBeNull();
    expect(await publishAnchors(stack.db.pool, send)).toBe(0);
    const published = await readAnchors(1);
    expect(published).toHaveLength(1);
    const record = JSON.parse(published[0]!);
    expect(record).toMatchObject({ anchor_id: 1, users: USERS, key_id: signer.keyId });
    const fields = {
      id: record.anchor_id,
      keyId: record.key_id,
      rootHex: record.root,
      users: record.users,
      createdAt: record.created_at,
    };
    expect(
      verifyAnchorSignature(signer.publicKeyBase64, anchorMessage(fields), Buffer.from(record.signature, 'base64')),
    ).toBe(true);
    expect(published[0]).toBe(anchorRecord({ ...fields, signature: record.signature }));
    expect(await verifyLedger(stack.db.pool, new Map([[signer.keyId, signer.publicKeyBase64]]))).toEqual([]);
  });

  it('makes no second anchor within the interval, nor while another process makes one', async () => {
    const signer = anchorSigner(stack.config.anchors.signingKey);
    expect(await createAnchor(stack.db.pool, signer, { unlessMadeWithinS: 3_600 })).toBeNull();
    const client = await stack.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ANCHOR_LOCK_KEY]);
      expect(await createAnchor(stack.db.pool, signer)).toBeNull();
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect(await createAnchor(stack.db.pool, signer)).toMatchObject({ id: 2, users: USERS });
  });

  it('anchors chains the live consumer linked: every user at their version, every link verified', async () => {
    const { rows } = await stack.db.pool.query(
      "SELECT count(*)::int AS users, min(version)::int AS low, max(version)::int AS high FROM accounts WHERE kind = 'user_available' AND chain_hash IS NOT NULL",
    );
    expect(rows[0]).toEqual({ users: USERS, low: DEPOSITS_EACH, high: DEPOSITS_EACH });
    const leaves = await stack.db.pool.query('SELECT count(*)::int AS n FROM anchor_leaves WHERE version = $1', [
      DEPOSITS_EACH,
    ]);
    expect(leaves.rows[0].n).toBe(USERS);
  });
});
