/**
 * Turns many concurrent `send`s into few Kafka produce requests. The service's producers allow
 * one request in flight per broker (PRODUCER_OPTIONS), so sending each command on its own would cap a gateway at
 * one round trip per command; here every command that arrives while a request is in flight
 * rides in the next one. Order is kept: messages leave in the order they were queued.
 *
 * With a linger (PRODUCE_LINGER_MS), the first message after a quiet moment also waits that
 * long for company instead of leaving alone: concurrent requests then share one produce request
 * from the start of a burst, the way Kafka's own clients batch with linger.ms.
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

export class BatchingPublisher {
  private queue: Pending[] = [];
  private flushing = false;
  private lingering: NodeJS.Timeout | null = null;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    /** The most messages in one produce request. */
    private readonly batchMessagesMax: number,
    /** The most messages waiting to be sent; past it, `send` refuses at once. */
    private readonly queuedMessagesMax: number,
    /** How long the first message of a burst waits for others before it is sent; 0 sends at once. */
    private readonly lingerMs = 0,
  ) {}

  /**
   * Sends these messages together, in one produce request, in the order given (a bulk of
   * commands). Not queued behind other sends: order across concurrent callers was never promised.
   */
  async sendAll(messages: readonly QueuedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.producer.send({ topic: this.topic, acks: -1, messages: messages.map((m) => ({ ...m })) });
  }

  send(message: QueuedMessage): Promise<void> {
    if (this.queue.length >= this.queuedMessagesMax) {
      return Promise.reject(new Error(`more than ${this.queuedMessagesMax} messages are waiting to be published`));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (this.flushing) return;
      if (this.lingerMs === 0 || this.queue.length >= this.batchMessagesMax) {
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

  private stopLingering(): void {
    if (this.lingering !== null) clearTimeout(this.lingering);
    this.lingering = null;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchMessagesMax);
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
