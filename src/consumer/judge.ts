/**
 * Step 3 of a chunk (pipeline.ts): the checks that need what prefetch read, decided. Pure. A
 * suspect that is a copy of a command already decided with the same body (a redelivery after its
 * key was retired, or after a gateway's key changed) is admitted, to be answered as the duplicate
 * it is; every other suspect is forged. A settle must settle its transfer's leg, once. What is
 * left goes to the ledger in offset order.
 */
import type { Candidate } from './pipeline-context.ts';
import type { Facts } from './prefetch.ts';
import { type Aside, inOffsetOrder, type Screened } from './screen.ts';
import { settleProblem } from './settle-check.ts';

export interface Judged {
  /** The commands to decide, in offset order. */
  readonly candidates: Candidate[];
  readonly asides: Aside[];
}

export function judge(mode: 'live' | 'replay', screened: Screened, facts: Facts): Judged {
  const asides: Aside[] = [];
  const admitted: Candidate[] = [];
  for (const { candidate, reason } of screened.suspects) {
    const stored = facts.decidedSuspects.get(candidate.item.command.id);
    if (stored && stored.fingerprint === candidate.item.fingerprint) admitted.push(candidate);
    else asides.push(forged(candidate, reason));
  }
  const settledBy = new Map(facts.settledBy);
  const candidates = inOffsetOrder([...screened.candidates, ...admitted]).filter((candidate) => {
    const { command } = candidate.item;
    if (command.type !== 'settle') return true;
    const problem = settleProblem(mode, command, facts.credits, settledBy);
    if (problem !== null) asides.push(forged(candidate, problem));
    return problem === null;
  });
  return { candidates, asides };
}

function forged(candidate: Candidate, message: string): Aside {
  return { message: candidate.message, kind: 'forged', reason: { code: 'invalid_command', message } };
}
