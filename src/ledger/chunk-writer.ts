/**
 * One write for what one fetch brought: the chunks a consumer's partitions decided at the same
 * time go to PostgreSQL together, in one statement (ledger_commit_chunk takes several chunks,
 * each fenced by its own partition's epoch). A statement's fixed cost is most of what a small
 * chunk costs PostgreSQL, and under synchronous load every partition's chunk is small.
 *
 * While a write is in flight, chunks queue; when it ends, everything queued (up to
 * `commandsMax` commands) goes in the next one. Nothing waits to fill a write. Each chunk's
 * promise settles with its own outcome: a refusal that names some chunks (their partition was
 * claimed, a command of theirs was decided already, a row of theirs moved) fails those, and the
 * others are written without them; any other failure of a merged write is retried chunk by
 * chunk, so one chunk's bad data stays its own.
 */
import type pg from 'pg';
import { ChunkRefusedError, type ChunkCommit, type CommittedChunk, commitChunks } from './store/index.ts';

interface Queued {
  readonly chunk: ChunkCommit;
  readonly commands: number;
  resolve(committed: CommittedChunk): void;
  reject(error: unknown): void;
}

export class ChunkWriter {
  private queue: Queued[] = [];
  private writing = false;
  /** Statements written, and the chunks they carried: the merge ratio, for metrics and tests. */
  writes = 0;
  chunks = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly commandsMax: number,
    private readonly onWrite: () => void = () => {},
  ) {}

  commit(chunk: ChunkCommit): Promise<CommittedChunk> {
    return new Promise((resolve, reject) => {
      this.queue.push({ chunk, commands: Math.max(1, chunk.commands.length), resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) await this.write(this.take());
    } finally {
      this.writing = false;
    }
  }

  /** The longest prefix of the queue within `commandsMax` commands; the first chunk always goes. */
  private take(): Queued[] {
    let n = 1;
    let commands = this.queue[0]!.commands;
    while (n < this.queue.length && commands + this.queue[n]!.commands <= this.commandsMax) {
      commands += this.queue[n]!.commands;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async write(batch: readonly Queued[]): Promise<void> {
    let pending = [...batch];
    while (pending.length > 0) {
      try {
        this.writes += 1;
        this.chunks += pending.length;
        this.onWrite();
        const committed = await commitChunks(
          this.pool,
          pending.map((q) => q.chunk),
        );
        for (const [i, q] of pending.entries()) q.resolve(committed[i]!);
        return;
      } catch (error) {
        if (pending.length === 1) {
          pending[0]!.reject(error);
          return;
        }
        if (error instanceof ChunkRefusedError) {
          const named = pending.filter((q) => error.concerns(q.chunk));
          const refused = named.length > 0 ? named : pending;
          for (const q of refused) q.reject(error);
          pending = pending.filter((q) => !refused.includes(q));
          continue;
        }
        for (const q of pending) await this.write([q]);
        return;
      }
    }
  }
}
