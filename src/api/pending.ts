/**
 * Commands this gateway published that may not be decided yet, so a poll can tell "pending"
 * from "unknown". Bounded in count and age; a poll for an entry that aged out, or one published
 * through another gateway instance, answers 404 until the consumer has decided it.
 */
export class PendingCommands {
  private readonly entries = new Map<string, { ownerId: number; at: number }>();
  constructor(
    private readonly entriesMax: number,
    private readonly ageMsMax: number,
  ) {}

  add(commandId: string, ownerId: number, now = Date.now()): void {
    this.entries.delete(commandId);
    if (this.entries.size >= this.entriesMax) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(commandId, { ownerId, at: now });
  }

  owner(commandId: string, now = Date.now()): number | null {
    const entry = this.entries.get(commandId);
    if (!entry) return null;
    if (now - entry.at > this.ageMsMax) {
      this.entries.delete(commandId);
      return null;
    }
    return entry.ownerId;
  }
}
