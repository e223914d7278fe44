/**
 * Which topics exist, cached briefly. The consumer asks before sending a reply to a topic a
 * command named, because a produce request to a missing topic is retried for seconds inside
 * the chunk, and enough of them outlast the group's session timeout.
 */
import type { Admin, Kafka } from './client.ts';

/** How long a listing is trusted; a topic created since is seen at most this late. */
export const TOPIC_LISTING_CACHE_MS = 5_000;

export class TopicDirectory {
  private admin: Admin | null = null;
  private known: ReadonlySet<string> = new Set();
  private listedAt = 0;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly kafka: Kafka) {}

  async exists(topic: string): Promise<boolean> {
    if (Date.now() - this.listedAt > TOPIC_LISTING_CACHE_MS) await this.refresh();
    return this.known.has(topic);
  }

  /** Drops the listing, so the next question lists again (after a send to a listed topic failed). */
  forget(): void {
    this.listedAt = 0;
  }

  async close(): Promise<void> {
    await this.admin?.disconnect();
    this.admin = null;
  }

  private refresh(): Promise<void> {
    // Partitions asking at once share one listing.
    this.refreshing ??= (async () => {
      try {
        if (!this.admin) {
          this.admin = this.kafka.admin();
          await this.admin.connect();
        }
        this.known = new Set(await this.admin.listTopics());
        this.listedAt = Date.now();
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}
