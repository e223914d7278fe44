import { INTERNAL_PROOF_HEADER, isInternalCommand } from '../commands/internal-proof.ts';
import { type Command, commandKey, parseHttpScopedId } from '../commands/schema.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import { partitionOfKey } from '../kafka/partition.ts';
import { findCommands } from '../ledger/store/index.ts';
import { retrying } from './apply.ts';
import type { Counts } from './counts.ts';
import type { Outbox } from './outbox.ts';
import { messageTimeMs, parseCommandMessage } from './parse-message.ts';
import type { PartitionRef } from './parking.ts';
import {
  type Candidate,
  type Context,
  type Parked,
  headerOf,
  headersOf,
  invalidReply,
  moveAside,
  replyKeyOfMessage,
} from './pipeline-context.ts';

/** A valid command whose proof (or attestation) does not hold: forged, unless a copy was already decided. */
export interface Suspect {
  readonly candidate: Candidate;
  readonly reason: string;
}

/**
 * Step 1: every message becomes a candidate, a suspect, or is moved aside (with a reply if it has
 * an id). No I/O: whether a suspect is a redelivered copy of a decided command is asked next.
 */
export function screen(
  ctx: Context,
  source: PartitionRef,
  messages: readonly KafkaMessage[],
  parked: Parked,
  outbox: Outbox,
  counts: Counts,
): { candidates: Candidate[]; suspects: Suspect[] } {
  const candidates: Candidate[] = [];
  const suspects: Suspect[] = [];
  const trust = ctx.trust ?? { allowedKeyIds: null, v1: true };
  for (const message of messages) {
    if (movedAsideIfParked(ctx, source, message, parked, outbox, counts)) continue;
    const parsed = parseCommandMessage(message.value, ctx.schema, ctx.replyTopics);
    if (!parsed.ok) {
      moveAside(ctx, source, message, outbox, counts, parsed);
      if (parsed.commandId)
        outbox.reply(invalidReply(parsed.commandId, parsed.message), parsed.replyTo, replyKeyOfMessage(message));
      continue;
    }
    const internal = isInternalCommand(parsed.command);
    const principal = internal
      ? 'consumer'
      : ctx.attestation.principalOf(
          { id: parsed.command.id, fingerprint: parsed.fingerprint },
          headersOf(message),
          trust,
        );
    const candidate: Candidate = {
      item: {
        command: parsed.command,
        fingerprint: parsed.fingerprint,
        partition: source.partition,
        offset: message.offset,
        principal,
        messageTimeMs: messageTimeMs(message.timestamp),
      },
      message,
    };
    if (internal && !ctx.signer.verify(parsed.command, headerOf(message, INTERNAL_PROOF_HEADER), trust.allowedKeyIds)) {
      suspects.push({
        candidate,
        reason:
          'An internal command without a valid proof from a key this partition accepts: only the consumer may publish settles and expires.',
      });
      continue;
    }
    const squatted = squattedHttpId(parsed.command.id, principal);
    if (squatted) {
      suspects.push({ candidate, reason: squatted });
      continue;
    }
    checkPartition(ctx, parsed.command, source, message.offset, counts);
    candidates.push(candidate);
  }
  return { candidates, suspects };
}

/**
 * A suspect that is a copy of a command already decided with the same body (a redelivery after
 * its key was retired, or after a gateway's key changed) is answered as the duplicate it is;
 * every other one is dead-lettered as forged. A copy proves nothing a decided command did not
 * already settle, and answering it changes nothing.
 */
export async function admitRepeats(
  ctx: Context,
  source: PartitionRef,
  suspects: readonly Suspect[],
  outbox: Outbox,
  counts: Counts,
): Promise<Candidate[]> {
  if (suspects.length === 0) return [];
  const ids = [...new Set(suspects.map((s) => s.candidate.item.command.id))];
  const decided = await retrying(() => findCommands(ctx.pool, ids), ids.length, ctx.apply);
  const admitted: Candidate[] = [];
  for (const { candidate, reason } of suspects) {
    const stored = decided.get(candidate.item.command.id);
    if (stored && stored.fingerprint === candidate.item.fingerprint) {
      admitted.push(candidate);
      continue;
    }
    moveAside(ctx, source, candidate.message, outbox, counts, { code: 'invalid_command', message: reason });
    counts.forged += 1;
  }
  return admitted;
}

export function inOffsetOrder(candidates: Candidate[]): Candidate[] {
  return candidates.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
}

/**
 * `~http:<uid>:<key>` ids are the gateway's: caller uid's Idempotency-Key. Only a message the
 * gateway attested for that same uid may use one; a producer that took one first would own the
 * user's key (their request would then be answered with the producer's command).
 */
export function squattedHttpId(commandId: string, principal: string): string | null {
  const scoped = parseHttpScopedId(commandId);
  if (!scoped || (/^(user|service|admin):[0-9]+$/.test(principal) && principal.endsWith(`:${scoped.userId}`)))
    return null;
  return "Ids that start with ~ are the service's own (~http: ids are callers' Idempotency-Keys, attested by the gateway); a producer must use its own ids.";
}

/** A message an operator parked is dead-lettered instead of being read (docs/operations.md). */
export function movedAsideIfParked(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  parked: Parked,
  outbox: Outbox,
  counts: Counts,
): boolean {
  const parking = parked.get(message.offset);
  if (!parking) return false;
  moveAside(ctx, source, message, outbox, counts, {
    code: 'parked',
    message: `Parked by ${parking.parkedBy}: ${parking.reason}`,
  });
  counts.parked += 1;
  return true;
}

/**
 * Per-user order holds only if every producer sends a user's commands to the same partition.
 * A command on the wrong one is still applied correctly (locks serialize it), but its order
 * relative to the user's other commands is no longer guaranteed, so it is counted and logged.
 */
export function checkPartition(
  ctx: Context,
  command: Command,
  source: PartitionRef,
  offset: string,
  counts: Counts,
): void {
  const partitions = ctx.partitionCount?.() ?? 0;
  if (partitions === 0 || partitionOfKey(commandKey(command), partitions) === source.partition) return;
  counts.misrouted += 1;
  ctx.log.warn(
    {
      commandId: command.id,
      userId: command.user_id,
      partition: source.partition,
      offset,
      expected: partitionOfKey(commandKey(command), partitions),
    },
    "a command arrived on a partition other than its user's murmur2 partition: check the producer's key and partitioner",
  );
}
