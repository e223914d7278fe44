/**
 * The README's walkthrough, run as a new user runs it: every example in order, on a fresh
 * database, against `npm start` itself (its own broker and PostgreSQL). Every shown command is
 * the one run, and every shown answer is the one the service gives now, apart from instants,
 * random ids and cursors. A drifted answer fails here: `npm run walkthrough -- --write` writes
 * the new ones (read the diff before committing it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithDocs, runWalkthrough } from '../../scripts/walkthrough.ts';
import type { StepRun } from '../../scripts/walkthrough/engine.ts';
import { startWalkthroughStack, type WalkthroughStack } from '../../scripts/walkthrough/stack.ts';

describe('the walkthrough (README.md, docs/walkthrough.md)', () => {
  let stack: WalkthroughStack | null = null;
  let runs: Map<string, StepRun[]>;

  beforeAll(async () => {
    stack = await startWalkthroughStack();
    runs = await runWalkthrough(stack.env);
  }, 420_000);

  afterAll(async () => {
    await stack?.stop();
  }, 120_000);

  it('shows every command and answer as the service gives it now', async () => {
    expect(await compareWithDocs(runs)).toEqual([]);
  });
});
