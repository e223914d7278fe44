/**
 * Turns many concurrent `send`s into few Kafka produce requests. The service's producers allow
 * one request in flight per broker (PRODUCER_OPTIONS), so sending each command on its own would cap a gateway at
 * one round trip per command; here every command that arrives while a request is in flight
 * rides in the next one. Order is kept: messages leave in the order they were queued.
 *
 * With a linger (PRODUCE_LINGER_MS), the first message after a quiet moment also waits that
 * long for company instead of leaving alone: concurrent requests then share one produce request
 * from the start of a burst, the way Kafka's own clients batch with linger.ms. Unlike linger.ms,
 * it lingers only when company is likely: when the caller says others are busy (the gateway:
 * another request waits for its reply), or the last flush sent several messages (a
 * burst is under way: clients in lock-step, all answered by one chunk, come back together). A
 * lone request has nobody to wait for, and the linger was a whole millisecond of its latency.
 */
import type { Producer } from '../kafka/client.ts';

export interface QueuedMessage {
  readonly key: string;
  readonly value: string;
  readonly headers?: Record<string, string>;
}

interface Pending {
  readonly message: QueuedMessage;
  resolve(): void;
  reject(error: unknown): void;
}

/** The most bytes (keys, values and headers) one produce request of `sendAll` carries. */
export const SEND_ALL_BYTES_MAX = 900_000;

function bytesOf(message: QueuedMessage): number {
  let bytes = Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += name.length + Buffer.byteLength(value);
  return bytes;
}

/** Consecutive runs of messages of at most `bytesMax` each (a longer message alone). */
export function partsOfBytes(messages: readonly QueuedMessage[], bytesMax: number): QueuedMessage[][] {
  const parts: QueuedMessage[][] = [];
  let current: QueuedMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = bytesOf(message);
    if (current.length > 0 && bytes + size > bytesMax) {
      parts.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) parts.push(current);
  return parts;
}

export class BatchingPublisher {
  private queue: Pending[] = [];
  private flushing = false;
  private lingering: NodeJS.Timeout | null = null;
  /** How many messages the last flush of `send` carried (0 before the first). */
  private lastBatchMessages = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    /** The most messages in one produce request. */
    private readonly batchMessagesMax: number,
    /** The most messages waiting to be sent; past it, `send` refuses at once. */
    private readonly queuedMessagesMax: number,
    /** How long the first message of a burst waits for others before it is sent; 0 sends at once. */
    private readonly lingerMs = 0,
    /** Whether others are busy, so that company is likely (default: always linger). */
    private readonly othersBusy: () => boolean = () => true,
  ) {}

  /**
   * Sends these messages together, in one produce request, in the order given (a bulk of
   * commands). Not queued behind other sends: order across concurrent callers was never promised.
   */
  async sendAll(messages: readonly QueuedMessage[]): Promise<void> {
    // One request unless the messages would pass the broker's 1 MiB per partition batch; then
    // as few as fit, one after another, so the order holds.
    for (const part of partsOfBytes(messages, SEND_ALL_BYTES_MAX)) {
      await this.producer.send({ topic: this.topic, acks: -1, messages: part.map((m) => ({ ...m })) });
    }
  }

  send(message: QueuedMessage): Promise<void> {
    if (this.queue.length >= this.queuedMessagesMax) {
      return Promise.reject(new Error(`more than ${this.queuedMessagesMax} messages are waiting to be published`));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (this.flushing) return;
      if (!this.shouldLinger() || this.queue.length >= this.batchMessagesMax) {
        this.stopLingering();
        void this.flush();
      } else if (this.lingering === null) {
        this.lingering = setTimeout(() => {
          this.lingering = null;
          void this.flush();
        }, this.lingerMs);
      }
    });
  }

  private shouldLinger(): boolean {
    if (this.lingerMs === 0) return false;
    return this.othersBusy() || this.lastBatchMessages > 1;
  }

  private stopLingering(): void {
    if (this.lingering !== null) clearTimeout(this.lingering);
    this.lingering = null;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      let sent = 0;
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchMessagesMax);
        sent += batch.length;
        // The whole flush: a burst split at the batch limit is still a burst.
        this.lastBatchMessages = sent;
        try {
          await this.producer.send({ topic: this.topic, acks: -1, messages: batch.map((p) => p.message) });
          for (const pending of batch) pending.resolve();
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
