/**
 * The consumer's commit step against real PostgreSQL, through the chunk pipeline the worker
 * runs: a partition's owner decides warm users from its cache and writes each chunk in one
 * statement, fenced by its epoch. What it must never do, each seen failing on its planted fault:
 * write after another consumer claimed the partition, decide on a row changed behind its cache,
 * or apply again a command decided before its cache knew of it.
 */
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { PartitionLostError, PartitionOwnership } from '../../src/consumer/ownership.ts';
import { createChunkPipeline, type ChunkPipeline, type ProcessedChunk } from '../../src/consumer/pipeline.ts';
import type { CommandReply } from '../../src/ledger/outcome.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { balancesOf } from '../helpers/commands.ts';
import { createTestDatabase, testConfig, testLog, type TestDatabase, uniqueSuffix } from '../helpers/stack.ts';

const PARTITION = 0;

describe('the commit step of a partition owner', () => {
  let db: TestDatabase;
  let config: Config;
  let offset = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { consumer: { stateCache: { usersMax: 100, ordersMax: 100, commandIdsMax: 2 } } });
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** A consumer of the command topic: its own ownership (epochs and caches), the shared database. */
  function consumer(): { pipeline: ChunkPipeline; ownership: PartitionOwnership } {
    const ownership = new PartitionOwnership(db.pool, config.topics.commands, config.consumer.stateCache);
    ownership.assigned([PARTITION]);
    return { pipeline: createChunkPipeline({ config, pool: db.pool, log: testLog, ownership }), ownership };
  }

  function messages(...commands: object[]): KafkaMessage[] {
    return commands.map((command) => {
      offset += 1;
      return {
        key: Buffer.from(String((command as { user_id: number }).user_id)),
        value: Buffer.from(JSON.stringify(command)),
        offset: String(offset),
        timestamp: String(Date.now()),
        attributes: 0,
        headers: {},
      } as KafkaMessage;
    });
  }

  const source = () => ({ topic: config.topics.commands, partition: PARTITION });
  const run = (owner: { pipeline: ChunkPipeline }, ...commands: object[]) =>
    owner.pipeline.process(source(), messages(...commands));
  const deposit = (id: string, user: number, amount: string) => ({ id, type: 'deposit', user_id: user, amount });

  /** The replies a chunk publishes, as `<id>:<code>` (`:dup` for a repeat), through a sink that keeps them. */
  async function codes(chunk: ProcessedChunk): Promise<string[]> {
    const replies: CommandReply[] = [];
    await chunk.outbox.flush({
      sendCore: async (batch) => {
        for (const { topic, messages } of batch)
          if (topic === config.topics.replies) replies.push(...messages.map((m) => JSON.parse(String(m.value))));
      },
      sendToReplyTarget: async () => 'sent',
    });
    return replies.map((reply) => `${reply.command_id}:${reply.code}${reply.duplicate ? ':dup' : ''}`);
  }

  it('writes nothing for a consumer whose partition another consumer claimed, until it is given the partition again', async () => {
    const user = 7_001;
    const ids = ['a1', 'b1', 'a2', 'a3'].map((name) => `${uniqueSuffix()}-${name}`);
    const a = consumer();
    const b = consumer();
    expect((await run(a, deposit(ids[0]!, user, '1.00'))).counts.cachedWrites).toBe(1);
    // A rebalance: b is given the partition and claims it, while a still thinks it owns it, warm.
    expect(await codes(await run(b, deposit(ids[1]!, user, '2.00')))).toEqual([`${ids[1]}:ok`]);
    await expect(run(a, deposit(ids[2]!, user, '4.00'))).rejects.toBeInstanceOf(PartitionLostError);
    await expect(run(a, deposit(ids[2]!, user, '4.00'))).rejects.toBeInstanceOf(PartitionLostError);
    expect((await balancesOf(db.pool, user)).available).toBe(300n);
    const decided = await db.pool.query('SELECT id FROM commands WHERE id = ANY($1) ORDER BY id', [ids]);
    expect(decided.rows.map((r) => r.id)).toEqual([ids[0], ids[1]].sort());
    // Given the partition again, a claims it anew and decides on what b wrote, not on its old cache.
    a.ownership.assigned([PARTITION]);
    expect(await codes(await run(a, deposit(ids[3]!, user, '8.00')))).toEqual([`${ids[3]}:ok`]);
    expect((await balancesOf(db.pool, user)).available).toBe(1_100n);
  });

  it('sees a balance changed behind its cache, and decides the chunk on the true state', async () => {
    const user = 7_002;
    const run1 = uniqueSuffix();
    const a = consumer();
    await run(a, deposit(`${run1}-d`, user, '1.00'));
    // An operator's correction that leaves the version alone.
    await db.pool.query("UPDATE accounts SET balance = balance + 500 WHERE kind = 'user_available' AND owner_id = $1", [
      user,
    ]);
    const chunk = await run(a, { id: `${run1}-w`, type: 'withdraw', user_id: user, amount: '3.00' });
    expect(await codes(chunk)).toEqual([`${run1}-w:ok`]);
    expect(chunk.counts).toMatchObject({ cacheRefusals: 1, cachedWrites: 0, sureWrites: 1 });
    expect((await balancesOf(db.pool, user)).available).toBe(300n);
    // The refusal made the user cold: the next chunk reads them once and is cached again.
    const next = await run(a, deposit(`${run1}-d2`, user, '1.00'));
    expect(next.counts).toMatchObject({ cachedWrites: 1, coldUsers: 1 });
    expect((await balancesOf(db.pool, user)).available).toBe(400n);
  });

  it('answers a command decided before its cache knew of it as a repeat, and applies it once', async () => {
    const user = 7_003;
    const run1 = uniqueSuffix();
    const a = consumer();
    const old = deposit(`${run1}-old`, user, '5.00');
    await run(a, old);
    // Two more commands push the old id out of the cache's recent ids (commandIdsMax 2).
    await run(a, deposit(`${run1}-x1`, user, '1.00'), deposit(`${run1}-x2`, user, '1.00'));
    const again = await run(a, old);
    expect(await codes(again)).toEqual([`${run1}-old:ok:dup`]);
    expect(again.counts).toMatchObject({ duplicates: 1, cacheRefusals: 1 });
    expect((await balancesOf(db.pool, user)).available).toBe(700n);
    const postings = await db.pool.query('SELECT count(*)::int AS n FROM postings WHERE command_id = $1', [old.id]);
    expect(postings.rows[0].n).toBe(1);
  });

  it('reads a user the bounded cache let go once more, and decides on their true balance', async () => {
    const small = { ...config.consumer.stateCache, usersMax: 4 };
    const ownership = new PartitionOwnership(db.pool, config.topics.commands, small);
    ownership.assigned([PARTITION]);
    const owner = {
      pipeline: createChunkPipeline({
        config: { ...config, consumer: { ...config.consumer, stateCache: small } },
        pool: db.pool,
        log: testLog,
        ownership,
      }),
    };
    const run1 = uniqueSuffix();
    const users = [7_100, 7_101, 7_102, 7_103, 7_104, 7_105];
    let cold = 0;
    for (const round of [1, 2, 3])
      for (const user of users)
        cold += (await run(owner, deposit(`${run1}-${round}-${user}`, user, '1.00'))).counts.coldUsers;
    for (const user of users) expect((await balancesOf(db.pool, user)).available).toBe(300n);
    // Six users through a cache of four, round robin: every chunk misses.
    expect(cold).toBe(18);
  });

  it("refuses a service's external reference used before, on the cached path too", async () => {
    const a = consumer();
    const run1 = uniqueSuffix();
    const user = 7_300;
    const paid = (id: string, ref: string) => ({ ...deposit(id, user, '1.00'), service_id: 9, external_ref: ref });
    const first = await run(a, paid(`${run1}-1`, `${run1}-pay`));
    expect(await codes(first)).toEqual([`${run1}-1:ok`]);
    // The user is warm now: this chunk is decided from the cache, which holds no references.
    const second = await run(a, paid(`${run1}-2`, `${run1}-pay`), deposit(`${run1}-canary`, user, '1.00'));
    expect(second.counts.cachedWrites).toBe(1);
    expect(await codes(second)).toEqual([`${run1}-2:external_ref_reused`, `${run1}-canary:ok`]);
    expect((await balancesOf(db.pool, user)).available).toBe(200n);
  });

  it('writes a chunk of warm users in one round trip to PostgreSQL, and a cold one in a few', async () => {
    let queries = 0;
    const countQueries = <T extends { query: (...args: never[]) => unknown }>(target: T): T =>
      new Proxy(target, {
        get(on, name, receiver) {
          if (name !== 'query') return Reflect.get(on, name, receiver);
          return (...args: never[]) => {
            queries += 1;
            return on.query.apply(on, args);
          };
        },
      });
    // The pool as the pipeline sees it: every statement counts, on the pool or on a client it lends.
    const counted = new Proxy(countQueries(db.pool), {
      get(on, name, receiver) {
        if (name !== 'connect') return Reflect.get(on, name, receiver);
        return async () => countQueries(await db.pool.connect());
      },
    });
    const ownership = new PartitionOwnership(counted, config.topics.commands, config.consumer.stateCache);
    ownership.assigned([PARTITION]);
    const noneParked = { inRange: async () => new Map() };
    const pipeline = createChunkPipeline({ config, pool: counted, log: testLog, ownership, parkedOffsets: noneParked });
    const owner = { pipeline };
    const run1 = uniqueSuffix();
    const user = 7_200;
    await run(owner, deposit(`${run1}-warm-up`, user, '1.00'));
    const perChunk: number[] = [];
    for (const n of [1, 2, 3]) {
      queries = 0;
      await run(owner, deposit(`${run1}-${n}a`, user, '1.00'), deposit(`${run1}-${n}b`, user, '2.00'));
      perChunk.push(queries);
    }
    expect(perChunk).toEqual([1, 1, 1]);
    expect((await balancesOf(db.pool, user)).available).toBe(1_000n);
    // Each warm chunk linked its events from the head the cache kept: the chain holds end to end.
    const chain = (await verifyLedger(db.pool)).filter((v) => v.check === 'history_chain');
    expect(chain).toEqual([]);
  });
});
