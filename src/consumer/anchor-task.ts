/**
 * Anchors the history chains at ANCHOR_INTERVAL_S (docs/history-chain.md) and publishes every
 * anchor not yet on TOPIC_ANCHORS. An anchor is stored before it is sent, and marked once the
 * broker has it: a process that dies in between leaves it unpublished, and the next look (of
 * any consumer, or `npm run anchor`) sends it. A repeat on the topic carries the same record.
 */
import type pg from 'pg';
import type { AnchorSigner } from '../ledger/anchor-signing.ts';
import { type Anchor, createAnchor, markAnchorsPublished, unpublishedAnchors } from '../ledger/store/anchors.ts';
import type { OutgoingMessage } from './dead-letter.ts';

/** The most anchors one look publishes; the rest go at the next. */
export const ANCHORS_PUBLISHED_PER_LOOK_MAX = 100;
/** How often a consumer looks whether an anchor is due or unpublished. */
export const ANCHOR_LOOK_INTERVAL_MS = 60_000;

/** The record on TOPIC_ANCHORS, keyed by the anchor's id. */
export function anchorRecord(anchor: Anchor): string {
  return JSON.stringify({
    anchor_id: anchor.id,
    key_id: anchor.keyId,
    root: anchor.rootHex,
    users: anchor.users,
    created_at: anchor.createdAt,
    signature: anchor.signature,
  });
}

export type SendAnchors = (messages: readonly OutgoingMessage[]) => Promise<void>;

/** Sends the anchors not yet published, oldest first; returns how many. */
export async function publishAnchors(pool: pg.Pool, send: SendAnchors): Promise<number> {
  const anchors = await unpublishedAnchors(pool, ANCHORS_PUBLISHED_PER_LOOK_MAX);
  if (anchors.length === 0) return 0;
  await send(anchors.map((a) => ({ key: String(a.id), value: anchorRecord(a) })));
  await markAnchorsPublished(
    pool,
    anchors.map((a) => a.id),
  );
  return anchors.length;
}

/** One look: an anchor if none was made in the last `intervalS` (0: never by itself), then publishing. */
export async function anchorIfDue(
  pool: pg.Pool,
  signer: AnchorSigner,
  intervalS: number,
  send: SendAnchors,
  now: () => Date = () => new Date(),
): Promise<Anchor | null> {
  const made = intervalS > 0 ? await createAnchor(pool, signer, { now, unlessMadeWithinS: intervalS }) : null;
  await publishAnchors(pool, send);
  return made;
}
