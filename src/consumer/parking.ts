/**
 * Parked offsets: messages an operator told the consumer to skip (sql/0004_parked_offsets.sql).
 * The pipeline asks once per chunk, for the chunk's offset range. The live consumer answers from
 * memory (ParkedOffsetsWatch); without a watch, or while its connection is down, one indexed
 * query per chunk answers.
 */
import pg from 'pg';
import type { Logger } from '../log.ts';

export interface ParkedOffset {
  readonly reason: string;
  readonly parkedBy: string;
}

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

const SQL_PARKED_IN_RANGE = `
  SELECT source_offset, reason, parked_by FROM parked_offsets
  WHERE source_topic = $1 AND source_partition = $2 AND source_offset BETWEEN $3 AND $4`;
const SQL_MARK_SKIPPED = `
  UPDATE parked_offsets SET skipped_at = coalesce(skipped_at, now())
  WHERE source_topic = $1 AND source_partition = $2 AND source_offset = ANY($3::bigint[])`;
const SQL_PARK = `
  INSERT INTO parked_offsets (source_topic, source_partition, source_offset, reason, parked_by)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
  RETURNING parked_at`;
const SQL_LIST = `
  SELECT source_topic, source_partition, source_offset, reason, parked_by, parked_at, skipped_at
  FROM parked_offsets ORDER BY parked_at DESC LIMIT $1`;

/** Parked offsets between `first` and `last` (inclusive), by offset. */
export async function parkedInRange(
  db: pg.Pool,
  at: PartitionRef,
  first: string,
  last: string,
): Promise<Map<string, ParkedOffset>> {
  const { rows } = await db.query<{ source_offset: string; reason: string; parked_by: string }>({
    name: 'consumer_parked_in_range',
    text: SQL_PARKED_IN_RANGE,
    values: [at.topic, at.partition, first, last],
  });
  return new Map(rows.map((row) => [row.source_offset, { reason: row.reason, parkedBy: row.parked_by }]));
}

export async function markSkipped(db: pg.Pool, at: PartitionRef, offsets: readonly string[]): Promise<void> {
  if (offsets.length > 0)
    await db.query({
      name: 'consumer_mark_skipped',
      text: SQL_MARK_SKIPPED,
      values: [at.topic, at.partition, offsets],
    });
}

/** Parks one offset; false if it was already parked (the first reason stands). */
export async function park(
  db: pg.Pool,
  at: PartitionRef & { offset: string; reason: string; parkedBy: string },
): Promise<boolean> {
  const { rowCount } = await db.query(SQL_PARK, [at.topic, at.partition, at.offset, at.reason, at.parkedBy]);
  return rowCount === 1;
}

const SQL_PRUNE_BELOW = `
  DELETE FROM parked_offsets p
  USING unnest($2::integer[], $3::bigint[]) AS k(partition, low)
  WHERE p.source_topic = $1 AND p.source_partition = k.partition AND p.source_offset < k.low`;

/**
 * Deletes the parks of messages the log no longer holds: those below each partition's low
 * watermark (`lows`), which the topic's retention removed. No consumer or replay can meet such a
 * message again, so its park protects nothing. Every other park is kept: a replay must skip it
 * as the live run did. Returns how many it deleted.
 */
export async function pruneParkedBelow(db: pg.Pool, topic: string, lows: ReadonlyMap<number, bigint>): Promise<number> {
  const below = [...lows].filter(([, low]) => low > 0n);
  if (below.length === 0) return 0;
  const { rowCount } = await db.query(SQL_PRUNE_BELOW, [
    topic,
    below.map(([partition]) => partition),
    below.map(([, low]) => String(low)),
  ]);
  return rowCount ?? 0;
}

export interface ParkedRow {
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: string;
  readonly reason: string;
  readonly parked_by: string;
  readonly parked_at: Date;
  readonly skipped_at: Date | null;
}

export async function listParked(db: pg.Pool, limit: number): Promise<ParkedRow[]> {
  return (await db.query<ParkedRow>(SQL_LIST, [limit])).rows;
}

/** The channel a trigger on parked_offsets notifies (sql/0022_parked_offsets_notify.sql). */
export const PARKED_CHANGED_CHANNEL = 'balance_parked_offsets';
/** The most parked offsets not skipped yet a watch keeps in memory; past it, it queries per chunk instead. */
export const PARKED_CACHED_MAX = 10_000;
/** How long a watch waits before it connects again after losing its connection. */
export const PARKED_RECONNECT_WAIT_MS = 1_000;
/** How long a watch waits before it looks again for a trigger it found missing or disabled. */
export const PARKED_TRIGGER_RECHECK_MS = 60_000;
/**
 * How often a watch proves its connection alive (a SELECT 1 that must answer within
 * PARKED_PING_TIMEOUT_MS) and reads the table again whatever it was told. A connection that a
 * NAT or a partition dropped silently sends no notification and no error: without the ping the
 * watch would answer from its copy for as long as TCP takes to give up (many minutes), and
 * without the reread a notification lost on the way (a pooler in transaction mode, a session
 * with triggers off) would never be made up for.
 */
export const PARKED_PING_MS = 5_000;
export const PARKED_PING_TIMEOUT_MS = 2_000;

const SQL_TRIGGER_ENABLED = `
  SELECT 1 FROM pg_trigger
  WHERE tgrelid = 'parked_offsets'::regclass AND tgname = 'parked_offsets_changed' AND tgenabled <> 'D'`;
// The offsets still to skip (few: an operator parks ahead of the consumer), and per partition the
// highest offset already skipped: a loose scan of the partial index, one probe per partition,
// however many rows the table keeps (it keeps every park: a replay must skip them too).
const SQL_PARKED_OF_TOPIC = `
  WITH RECURSIVE skipped(p) AS (
    SELECT min(source_partition) FROM parked_offsets WHERE source_topic = $1 AND skipped_at IS NOT NULL
    UNION ALL
    SELECT (SELECT min(source_partition) FROM parked_offsets
            WHERE source_topic = $1 AND skipped_at IS NOT NULL AND source_partition > skipped.p)
    FROM skipped WHERE skipped.p IS NOT NULL
  )
  (SELECT source_partition, source_offset::text, reason, parked_by, false AS skipped FROM parked_offsets
   WHERE source_topic = $1 AND skipped_at IS NULL LIMIT $2)
  UNION ALL
  SELECT p, (SELECT max(source_offset) FROM parked_offsets
             WHERE source_topic = $1 AND skipped_at IS NOT NULL AND source_partition = skipped.p)::text, NULL, NULL, true
  FROM skipped WHERE p IS NOT NULL`;

export interface ParkedOffsetsSource {
  inRange(at: PartitionRef, first: string, last: string): Promise<Map<string, ParkedOffset>>;
}

/**
 * Answers "which offsets of this chunk are parked" without a round trip per chunk. A chunk of a
 * few commands used to pay a query of its own for a table that is almost always empty.
 *
 * It holds the parked offsets of the command topic that were not skipped yet, and per partition
 * the highest offset already skipped, read on a connection of its own that LISTENs to the
 * trigger on parked_offsets; any change there marks the copy stale, and the next chunk reads it
 * again. A park therefore counts for every chunk screened after its notification arrived, as it
 * counted for every chunk whose query ran after its commit: the operator sees no difference. A
 * chunk that starts at or below a skipped offset (processed again after a rewind or a crash)
 * queries, so skipped parks, which the table keeps for good, cost the copy nothing. Until the
 * watch has LISTENed and read the table, after its connection drops or stops answering its
 * ping, while the trigger is missing or disabled, or when more than PARKED_CACHED_MAX offsets
 * wait to be skipped, it falls back to the query per chunk.
 */
export class ParkedOffsetsWatch implements ParkedOffsetsSource {
  /** The connection being opened or open; events of any older one are ignored. */
  private current: pg.Client | null = null;
  /** The connection once it LISTENs: chunks are answered from memory only while it is set. */
  private listening: pg.Client | null = null;
  /** Parked offsets not skipped yet, by partition, then offset; null until read, or when too many to keep. */
  private copy: Map<number, Map<string, ParkedOffset>> | null = null;
  /** The highest skipped offset of each partition that has one, as of the last read. */
  private skippedThrough = new Map<number, bigint>();
  private stale = true;
  private loading: Promise<void> | null = null;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
    private readonly topic: string,
    private readonly log: Logger,
    private readonly cachedMax = PARKED_CACHED_MAX,
    private readonly pingMs = PARKED_PING_MS,
  ) {}

  /** Connects and LISTENs; if that fails, chunks query until a later attempt succeeds. */
  async start(): Promise<void> {
    this.stopped = false;
    this.pingTimer = setInterval(() => void this.ping(), this.pingMs);
    this.pingTimer.unref();
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const client = this.current;
    this.current = this.listening = this.copy = null;
    await client?.end().catch(() => {});
  }

  /** True while chunks are answered from memory. */
  get watching(): boolean {
    return this.listening !== null;
  }

  async inRange(at: PartitionRef, first: string, last: string): Promise<Map<string, ParkedOffset>> {
    if (at.topic !== this.topic) return this.fallback(at, first, last);
    // Parks that keep coming while the copy is read could keep it stale: a few reads, then a query.
    for (let i = 0; i < RELOADS_PER_CHUNK_MAX && this.listening !== null && (this.stale || this.loading); i += 1)
      await (this.loading ??= this.reload().finally(() => (this.loading = null)));
    if (this.listening === null || this.stale || this.copy === null) return this.fallback(at, first, last);
    const low = BigInt(first);
    const high = BigInt(last);
    const skipped = this.skippedThrough.get(at.partition);
    if (skipped !== undefined && low <= skipped) return this.fallback(at, first, last);
    const found = new Map<string, ParkedOffset>();
    for (const [offset, parking] of this.copy.get(at.partition) ?? []) {
      const value = BigInt(offset);
      if (value >= low && value <= high) found.set(offset, parking);
    }
    return found;
  }

  private fallback(at: PartitionRef, first: string, last: string) {
    return parkedInRange(this.pool, at, first, last);
  }

  /** Proves the listening connection alive, and has the next chunk read the table again. */
  private async ping(): Promise<void> {
    const client = this.listening;
    if (client === null) return;
    try {
      await client.query('SELECT 1');
      this.stale = true;
    } catch (error) {
      this.lost(client, error);
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ ...this.clientConfig, keepAlive: true, query_timeout: PARKED_PING_TIMEOUT_MS });
    this.current = client;
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the connection ended')));
    client.on('notification', () => {
      this.stale = true;
    });
    try {
      await client.connect();
      // LISTEN before the first read: a park committed in between is then a notification, not lost.
      await client.query(`LISTEN ${PARKED_CHANGED_CHANNEL}`);
      if ((await client.query(SQL_TRIGGER_ENABLED)).rowCount === 0) {
        const missing = new Error('the trigger parked_offsets_changed is missing or disabled (sql/0022)');
        this.lost(client, missing, PARKED_TRIGGER_RECHECK_MS);
        return;
      }
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.current !== client) return;
    this.stale = true;
    this.listening = client;
  }

  /** Reads the topic's parked offsets again; a notification during the read marks it stale again. */
  private async reload(): Promise<void> {
    this.stale = false;
    try {
      const { rows } = await this.pool.query<ParkedOfTopicRow>({
        name: 'consumer_parked_of_topic',
        text: SQL_PARKED_OF_TOPIC,
        values: [this.topic, this.cachedMax + 1],
      });
      const pending = rows.filter((row) => !row.skipped);
      this.skippedThrough = new Map(
        rows.filter((row) => row.skipped).map((row) => [row.source_partition, BigInt(row.source_offset)]),
      );
      this.copy = pending.length > this.cachedMax ? null : byPartition(pending);
    } catch (error) {
      this.stale = true;
      throw error;
    }
  }

  private lost(client: pg.Client, error: unknown, retryWaitMs = PARKED_RECONNECT_WAIT_MS): void {
    if (client !== this.current) return;
    this.current = this.listening = this.copy = null;
    void client.end().catch(() => {});
    if (this.stopped) return;
    this.log.warn(
      { err: error, retryWaitMs },
      'the parked offsets watch cannot listen: chunks query parked offsets until it can',
    );
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, retryWaitMs);
    this.reconnectTimer.unref();
  }
}

interface ParkedOfTopicRow {
  source_partition: number;
  source_offset: string;
  reason: string;
  parked_by: string;
  skipped: boolean;
}

/** How many times one chunk reads the copy again before it queries instead. */
const RELOADS_PER_CHUNK_MAX = 3;

function byPartition(
  rows: readonly { source_partition: number; source_offset: string; reason: string; parked_by: string }[],
): Map<number, Map<string, ParkedOffset>> {
  const copy = new Map<number, Map<string, ParkedOffset>>();
  for (const row of rows) {
    let ofPartition = copy.get(row.source_partition);
    if (!ofPartition) copy.set(row.source_partition, (ofPartition = new Map()));
    ofPartition.set(row.source_offset, { reason: row.reason, parkedBy: row.parked_by });
  }
  return copy;
}
