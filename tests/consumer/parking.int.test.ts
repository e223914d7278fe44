/**
 * Parked offsets (docs/operations.md): the consumer dead-letters a parked message instead of
 * applying it. The live consumer keeps the parked offsets in memory (ParkedOffsetsWatch) and is
 * told of every change by a trigger (sql/0022_parked_offsets_notify.sql), so a chunk costs no
 * query for them; these tests hold it to the behaviour of the query it replaced.
 */
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { park, ParkedOffsetsWatch, type PartitionRef } from '../../src/consumer/parking.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import { readDeadLetters } from '../../src/tools/dlq.ts';
import { collectReplies, publish, type ReplyCollector } from '../helpers/commands.ts';
import {
  createTestDatabase,
  eventually,
  startStack,
  testLog,
  uniqueSuffix,
  type RunningStack,
  type TestDatabase,
} from '../helpers/stack.ts';

const TOPIC = 'parking-test.commands';
const AT: PartitionRef = { topic: TOPIC, partition: 2 };
/** How long a park may take to reach the watch (a notification on localhost takes a millisecond). */
const NOTICE_WAIT_MS = 2_000;
const WATCH_APP = 'test-parked-watch';

/** A pool whose queries of parked_offsets are counted: what a chunk costs PostgreSQL. */
function countingPool(pool: pg.Pool): { pool: pg.Pool; parkedQueries: () => number } {
  let parkedQueries = 0;
  const counted = new Proxy(pool, {
    get(target, property, receiver) {
      if (property !== 'query') return Reflect.get(target, property, receiver);
      return (...args: unknown[]) => {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
        if (text.includes('parked_offsets')) parkedQueries += 1;
        return (target.query as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
  return { pool: counted, parkedQueries: () => parkedQueries };
}

/** Calls inRange until it reports `offset` parked, at most NOTICE_WAIT_MS; returns whether it did. */
async function seenWithin(watch: ParkedOffsetsWatch, offset: string): Promise<boolean> {
  const deadline = Date.now() + NOTICE_WAIT_MS;
  while (Date.now() < deadline) {
    if ((await watch.inRange(AT, '0', '1000')).has(offset)) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

describe('the parked offsets watch', () => {
  let db: TestDatabase;
  const watches: ParkedOffsetsWatch[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const watch of watches.splice(0)) await watch.stop();
    await db.pool.query('DELETE FROM parked_offsets');
    await db.pool.query('ALTER TABLE parked_offsets ENABLE TRIGGER parked_offsets_changed');
    for (const proxy of proxies.splice(0)) await proxy.close();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function startWatch(
    pool: pg.Pool,
    options: { cachedMax?: number; pingMs?: number; url?: string; listening?: boolean } = {},
  ): Promise<ParkedOffsetsWatch> {
    const watch = new ParkedOffsetsWatch(
      pool,
      { connectionString: options.url ?? db.url, application_name: WATCH_APP },
      TOPIC,
      testLog,
      options.cachedMax,
      options.pingMs,
    );
    watches.push(watch);
    await watch.start();
    expect(watch.watching).toBe(options.listening ?? true);
    return watch;
  }

  it('answers chunks from memory: one read of the table, then no query per chunk', async () => {
    await park(db.pool, { ...AT, offset: '40', reason: 'bug 1', parkedBy: 'ops' });
    const { pool, parkedQueries } = countingPool(db.pool);
    const watch = await startWatch(pool);
    const answers = [];
    for (let first = 0; first < 100; first += 10)
      answers.push(await watch.inRange(AT, String(first), String(first + 9)));
    expect(answers.map((a) => [...a.keys()])).toEqual([[], [], [], [], ['40'], [], [], [], [], []]);
    expect(answers[4]!.get('40')).toEqual({ reason: 'bug 1', parkedBy: 'ops' });
    expect(await watch.inRange({ ...AT, partition: 3 }, '0', '100')).toEqual(new Map());
    expect(parkedQueries()).toBe(1);
  });

  it('sees a park, by the tool or by plain SQL, on the next chunk after its notification', async () => {
    const watch = await startWatch(db.pool);
    expect(await watch.inRange(AT, '0', '1000')).toEqual(new Map());
    await park(db.pool, { ...AT, offset: '7', reason: 'bug 2', parkedBy: 'ops' });
    expect(await seenWithin(watch, '7')).toBe(true);
    await db.pool.query(
      `INSERT INTO parked_offsets (source_topic, source_partition, source_offset, reason, parked_by) VALUES ($1, $2, 8, 'bug 3', 'dba')`,
      [TOPIC, AT.partition],
    );
    expect(await seenWithin(watch, '8')).toBe(true);
    // An unpark (a DELETE) counts too: the message would be applied again on a re-read.
    await db.pool.query('DELETE FROM parked_offsets WHERE source_offset = 7');
    expect(await stillParked(watch, '7')).toBe(false);
  });

  /** Whether `offset` is still reported after NOTICE_WAIT_MS (false once the unpark reached the watch). */
  async function stillParked(watch: ParkedOffsetsWatch, offset: string): Promise<boolean> {
    const deadline = Date.now() + NOTICE_WAIT_MS;
    while (Date.now() < deadline) {
      if (!(await watch.inRange(AT, '0', '1000')).has(offset)) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  it('(planted: trigger disabled) misses a park until its next reread, which the ping bounds', async () => {
    const watch = await startWatch(db.pool, { pingMs: 4_000 });
    expect(await watch.inRange(AT, '0', '1000')).toEqual(new Map());
    await db.pool.query('ALTER TABLE parked_offsets DISABLE TRIGGER parked_offsets_changed');
    await park(db.pool, { ...AT, offset: '9', reason: 'bug 4', parkedBy: 'ops' });
    // What the test above relies on: without the notification, the copy is not read again at once...
    expect(await seenWithin(watch, '9')).toBe(false);
    // ...but the ping's reread catches up, so a lost notification costs seconds, not forever.
    await eventually(async () => ((await watch.inRange(AT, '0', '1000')).has('9') ? true : undefined), 6_000);
  });

  it('does not listen while the trigger is disabled, and every chunk queries', async () => {
    await db.pool.query('ALTER TABLE parked_offsets DISABLE TRIGGER parked_offsets_changed');
    const { pool, parkedQueries } = countingPool(db.pool);
    const watch = await startWatch(pool, { listening: false });
    await park(db.pool, { ...AT, offset: '12', reason: 'bug 6', parkedBy: 'ops' });
    expect((await watch.inRange(AT, '0', '20')).has('12')).toBe(true);
    expect((await watch.inRange(AT, '0', '20')).has('12')).toBe(true);
    expect(parkedQueries()).toBe(2);
  });

  it('notices a connection that stopped answering without closing, and queries meanwhile', async () => {
    const server = new URL(db.url);
    const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    proxies.push(proxy);
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const watch = await startWatch(db.pool, { url: viaProxy.toString(), pingMs: 300 });
    proxy.freeze();
    await park(db.pool, { ...AT, offset: '13', reason: 'bug 7', parkedBy: 'ops' });
    // No notification and no error come through a frozen connection: the ping's timeout says it is gone.
    await eventually(async () => (watch.watching ? undefined : true), 5_000, 'the watch to give up its connection');
    expect((await watch.inRange(AT, '0', '20')).has('13')).toBe(true);
  });

  it('queries per chunk while its connection is down, and sees what was parked meanwhile', async () => {
    const { pool, parkedQueries } = countingPool(db.pool);
    const watch = await startWatch(pool);
    await db.pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
      [WATCH_APP],
    );
    await eventually(async () => (watch.watching ? undefined : true), 5_000, 'the watch to notice');
    await park(db.pool, { ...AT, offset: '11', reason: 'bug 5', parkedBy: 'ops' });
    const before = parkedQueries();
    expect((await watch.inRange(AT, '0', '20')).has('11')).toBe(true);
    expect(parkedQueries()).toBe(before + 1);
    // It connects again by itself, reads the table afresh, and stops querying per chunk.
    await eventually(async () => (watch.watching ? true : undefined), 5_000, 'the watch to reconnect');
    expect((await watch.inRange(AT, '0', '20')).has('11')).toBe(true);
    const afterReconnect = parkedQueries();
    for (let i = 0; i < 5; i += 1) await watch.inRange(AT, '0', '20');
    expect(parkedQueries()).toBe(afterReconnect);
  });

  it('keeps skipped parks out of memory: chunks past them are answered from memory, a chunk at one queries', async () => {
    const at = { topic: AT.topic, partition: 7 };
    await db.pool.query(
      `INSERT INTO parked_offsets (source_topic, source_partition, source_offset, reason, parked_by, skipped_at)
       SELECT $1, $2, n, 'old', 'ops', now() FROM generate_series(1, 20000) AS n`,
      [at.topic, at.partition],
    );
    await park(db.pool, { ...at, offset: '30005', reason: 'ahead', parkedBy: 'ops' });
    const { pool, parkedQueries } = countingPool(db.pool);
    const watch = await startWatch(pool, { cachedMax: 10 });
    const ahead = await watch.inRange(at, '30000', '30010');
    expect([...ahead.keys()]).toEqual(['30005']);
    expect((await watch.inRange(at, '30011', '30020')).size).toBe(0);
    // One read: 20,001 parks, one of them still to skip, and nothing more per chunk.
    expect(parkedQueries()).toBe(1);
    // A chunk processed again from a skipped offset (after a rewind or a crash) asks the table.
    const again = await watch.inRange(at, '19995', '20004');
    expect([...again.keys()].sort()).toEqual(['19995', '19996', '19997', '19998', '19999', '20000']);
    expect(parkedQueries()).toBe(2);
    await db.pool.query('DELETE FROM parked_offsets WHERE source_partition = $1', [at.partition]);
  });

  it('queries per chunk when more offsets are parked than it keeps', async () => {
    for (const offset of ['1', '2', '3']) await park(db.pool, { ...AT, offset, reason: 'many', parkedBy: 'ops' });
    const { pool, parkedQueries } = countingPool(db.pool);
    const watch = await startWatch(pool, { cachedMax: 2 });
    const first = await watch.inRange(AT, '0', '10');
    const second = await watch.inRange(AT, '0', '10');
    expect([...first.keys()].sort()).toEqual(['1', '2', '3']);
    expect([...second.keys()].sort()).toEqual(['1', '2', '3']);
    // One read of the table that found too many, then a query for each chunk.
    expect(parkedQueries()).toBe(3);
  });
});

describe('a parked message, with the consumer running', () => {
  let stack: RunningStack;
  let replies: ReplyCollector;

  beforeAll(async () => {
    stack = await startStack();
    replies = await collectReplies(stack.kafka, stack.config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    await stack?.stop();
  });

  it('is dead-lettered with code parked, not applied, and the partition goes on', async () => {
    const { kafka, config, db } = stack;
    const user = 4_242;
    const partition = partitionOfKey(String(user), config.topics.commandPartitions);
    const warmup = `park-warmup-${uniqueSuffix()}`;
    await publish(kafka, config.topics.commands, [{ id: warmup, type: 'deposit', user_id: user, amount: '1.00' }]);
    expect((await replies.waitFor([warmup], 10_000)).get(warmup)).toMatchObject({ status: 'applied' });
    // The next offset of the partition is the one the parked command will get.
    const admin = kafka.admin();
    await admin.connect();
    const next = (await admin.fetchTopicOffsets(config.topics.commands)).find((p) => p.partition === partition)!.high;
    await admin.disconnect();
    await park(db.pool, {
      topic: config.topics.commands,
      partition,
      offset: next,
      reason: 'test: a command that must not apply',
      parkedBy: 'test',
    });
    const parkedId = `park-me-${uniqueSuffix()}`;
    const canary = `park-canary-${uniqueSuffix()}`;
    await publish(kafka, config.topics.commands, [
      { id: parkedId, type: 'deposit', user_id: user, amount: '5.00' },
      { id: canary, type: 'deposit', user_id: user, amount: '0.01' },
    ]);
    expect((await replies.waitFor([canary], 10_000)).get(canary)).toMatchObject({ status: 'applied' });
    const { rows } = await db.pool.query<{ applied: string; skipped: boolean }>(
      `SELECT (SELECT count(*) FROM commands WHERE id = $1) AS applied,
              (SELECT skipped_at IS NOT NULL FROM parked_offsets WHERE source_offset = $2 AND source_partition = $3) AS skipped`,
      [parkedId, next, partition],
    );
    expect(rows[0]).toEqual({ applied: '0', skipped: true });
    const letters = await eventually(async () => {
      const found = (await readDeadLetters(kafka, config.topics.deadLetters, 10_000)).filter((letter) =>
        letter.value?.toString().includes(parkedId),
      );
      return found.length > 0 ? found : undefined;
    }, 10_000);
    expect(letters.map((letter) => letter.headers['x-error-code'])).toEqual(['parked']);
  });
});
