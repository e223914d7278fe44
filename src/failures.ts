/**
 * Whether a failure can go away by itself. Decided where an error is raised, not guessed where it
 * is caught: our own errors carry `failureKind`, PostgreSQL errors their SQLSTATE.
 *   transient      retry with backoff; never skip a command because of it.
 *   deterministic  the same input fails the same way on every try; isolate it and move on.
 * Unknown errors are transient, so a bug or an outage pauses work instead of skipping commands;
 * an operator can park one offset when a bug in this service is the cause (docs/operations.md).
 */
import { isDeterministicDbError } from './db/errors.ts';

export type FailureKind = 'transient' | 'deterministic';

export function failureKind(error: unknown): FailureKind {
  if (
    error &&
    typeof error === 'object' &&
    'failureKind' in error &&
    (error.failureKind === 'deterministic' || error.failureKind === 'transient')
  ) {
    return error.failureKind;
  }
  return isDeterministicDbError(error) ? 'deterministic' : 'transient';
}
