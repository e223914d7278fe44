/**
 * Step 1 of a chunk (pipeline.ts): screening. Every message becomes a candidate, a suspect, or
 * an aside (dead-lettered, with a reply if it has an id). Pure: no I/O, and nothing written to
 * the outbox or the counts; the chunk's driver records what this returns.
 */
import { INTERNAL_PROOF_HEADER, type InternalCommandSigner, isInternalCommand } from '../commands/internal-proof.ts';
import type { PrincipalAttestation, ProofTrust } from '../commands/principal-proof.ts';
import type { ReplyTopicPolicy } from '../commands/reply-topics.ts';
import { type Command, type CommandSchema, commandKey, parseHttpScopedId } from '../commands/schema.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import { partitionOfKey } from '../kafka/partition.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import type { DeadLetterReason } from './dead-letter.ts';
import { messageTimeMs, parseCommandMessage } from './parse-message.ts';
import type { PartitionRef } from './parking.ts';
import {
  type Candidate,
  type Parked,
  headerOf,
  headersOf,
  invalidReply,
  replyKeyOfMessage,
} from './pipeline-context.ts';

/** What screening needs: the schema, the reply policy, the proofs and what they are trusted with. */
export interface ScreenContext {
  readonly schema: CommandSchema;
  readonly replyTopics: ReplyTopicPolicy;
  readonly signer: InternalCommandSigner;
  readonly attestation: PrincipalAttestation;
  /** Which proofs the segment trusts (decideWith); absent: any key, and v1 proofs too. */
  readonly trust?: ProofTrust;
  /** The command topic's partition count, to spot commands on the wrong partition; 0 skips the check. */
  readonly partitionCount?: () => number;
}

/** A valid command whose proof (or attestation) does not hold: forged, unless a copy was already decided. */
export interface Suspect {
  readonly candidate: Candidate;
  readonly reason: string;
}

/** A message that is not decided: dead-lettered, counted by its kind, and answered if it has an id. */
export interface Aside {
  readonly message: KafkaMessage;
  readonly reason: DeadLetterReason;
  /** `invalid`: not a command; `parked`: an operator parked it; `forged`: a proof that does not hold. */
  readonly kind: 'invalid' | 'parked' | 'forged';
  readonly reply?: { readonly reply: CommandReply; readonly replyTo: string | null; readonly replyKey: string | null };
}

/** A command on a partition other than its user's: applied all the same, counted and logged. */
export interface Misrouted {
  readonly command: Command;
  readonly offset: string;
  readonly expected: number;
}

export interface Screened {
  readonly candidates: Candidate[];
  readonly suspects: Suspect[];
  readonly asides: Aside[];
  readonly misrouted: Misrouted[];
}

export function screen(
  ctx: ScreenContext,
  source: PartitionRef,
  messages: readonly KafkaMessage[],
  parked: Parked,
): Screened {
  const screened: Screened = { candidates: [], suspects: [], asides: [], misrouted: [] };
  const trust = ctx.trust ?? { allowedKeyIds: null, v1: true };
  for (const message of messages) {
    const parking = parkedAside(message, parked);
    if (parking) {
      screened.asides.push(parking);
      continue;
    }
    const parsed = parseCommandMessage(message.value, ctx.schema, ctx.replyTopics);
    if (!parsed.ok) {
      const reply = parsed.commandId
        ? {
            reply: invalidReply(parsed.commandId, parsed.message),
            replyTo: parsed.replyTo,
            replyKey: replyKeyOfMessage(message),
          }
        : undefined;
      screened.asides.push({ message, reason: parsed, kind: 'invalid', ...(reply ? { reply } : {}) });
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
      screened.suspects.push({
        candidate,
        reason:
          'An internal command without a valid proof from a key this partition accepts: only the consumer may publish settles and expires.',
      });
      continue;
    }
    const squatted = squattedHttpId(parsed.command.id, principal);
    if (squatted) {
      screened.suspects.push({ candidate, reason: squatted });
      continue;
    }
    const expected = expectedPartition(ctx, parsed.command);
    if (expected !== null && expected !== source.partition)
      screened.misrouted.push({ command: parsed.command, offset: message.offset, expected });
    screened.candidates.push(candidate);
  }
  return screened;
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
export function parkedAside(message: KafkaMessage, parked: Parked): Aside | null {
  const parking = parked.get(message.offset);
  if (!parking) return null;
  return {
    message,
    kind: 'parked',
    reason: { code: 'parked', message: `Parked by ${parking.parkedBy}: ${parking.reason}` },
  };
}

/**
 * Per-user order holds only if every producer sends a user's commands to the same partition.
 * A command on the wrong one is still applied correctly (locks serialize it), but its order
 * relative to the user's other commands is no longer guaranteed, so it is counted and logged.
 * Null when the partition count is unknown.
 */
function expectedPartition(ctx: ScreenContext, command: Command): number | null {
  const partitions = ctx.partitionCount?.() ?? 0;
  return partitions === 0 ? null : partitionOfKey(commandKey(command), partitions);
}
