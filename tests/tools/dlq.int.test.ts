import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { readDeadLetters, redrive } from '../../src/tools/dlq.ts';
import { balancesOf, collectReplies, publish, type ReplyCollector } from '../helpers/commands.ts';
import { envFor, spawnService } from '../helpers/processes.ts';
import { eventually, startStack, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

describe('dead letters: list and re-drive', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let replies: ReplyCollector;

  beforeAll(async () => {
    stack = await startStack();
    ({ db, config, kafka } = stack);
    replies = await collectReplies(kafka, config.topics.replies);
    await publish(kafka, config.topics.commands, [
      { raw: JSON.stringify({ id: 'fix-me', type: 'deposit', user_id: 77, amount: '5.000' }), key: '77' },
      { raw: 'garbage', key: '78' },
    ]);
    // Counted once Kafka acknowledged the dead letters; read them to be sure they are there.
    await eventually(async () =>
      (await readDeadLetters(kafka, config.topics.deadLetters, 10)).length >= 2 ? true : undefined,
    );
  });
  afterAll(async () => {
    await replies?.stop();
    await stack?.stop();
  });

  it('lists each dead letter with its error code, through the CLI too', async () => {
    const letters = await readDeadLetters(kafka, config.topics.deadLetters, 10);
    expect(letters.map((l) => l.headers['x-error-code']).sort()).toEqual(['invalid_command', 'not_json']);
    const cli = spawnService('src/tools/dlq-cli.ts', envFor(config), ['list', '--limit', '10']);
    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain('invalid_command');
    expect(cli.output()).toContain('not_json');
  });

  it('re-drives a corrected command once in effect, however often it is re-driven', async () => {
    const letter = (await readDeadLetters(kafka, config.topics.deadLetters, 10)).find(
      (l) => l.headers['x-error-code'] === 'invalid_command',
    )!;
    const corrected = JSON.stringify({ id: 'fix-me', type: 'deposit', user_id: 77, amount: '5.00' });
    await redrive(kafka, config.topics.commands, [letter], corrected);
    await redrive(kafka, config.topics.commands, [letter], corrected);
    await eventually(async () =>
      replies.replies.get('fix-me')?.filter((r) => r.status === 'applied').length === 2 ? true : undefined,
    );
    const applied = replies.replies.get('fix-me')!.filter((r) => r.status === 'applied');
    expect(applied.map((r) => r.duplicate)).toEqual([false, true]);
    expect(await balancesOf(db.pool, 77)).toEqual({ available: 500n, reserved: 0n, incoming: 0n });
  });

  it('sends a message that is still bad back to the dead-letter topic, not into the ledger', async () => {
    const before = (await readDeadLetters(kafka, config.topics.deadLetters, 100)).length;
    const garbage = (await readDeadLetters(kafka, config.topics.deadLetters, 100)).find(
      (l) => l.headers['x-error-code'] === 'not_json',
    )!;
    await redrive(kafka, config.topics.commands, [garbage]);
    await eventually(async () =>
      (await readDeadLetters(kafka, config.topics.deadLetters, 100)).length > before ? true : undefined,
    );
    const again = (await readDeadLetters(kafka, config.topics.deadLetters, 100)).filter(
      (l) => l.headers['x-redriven-from'] === `dlq:${garbage.id}`,
    );
    expect(again.map((l) => [l.value?.toString(), l.headers['x-error-code']])).toEqual([['garbage', 'not_json']]);
  });

  it('re-drives an invalid command as it was into the dead-letter topic again, and the ledger gets only the canary behind it', async () => {
    const commandsBefore = (await db.pool.query('SELECT count(*)::int AS n FROM commands')).rows[0].n as number;
    const invalid = (await readDeadLetters(kafka, config.topics.deadLetters, 100)).find(
      (l) => l.headers['x-error-code'] === 'invalid_command' && !l.headers['x-redriven-from'],
    )!;
    await redrive(kafka, config.topics.commands, [invalid]);
    await publish(kafka, config.topics.commands, [{ id: 'dlq-canary', type: 'deposit', user_id: 77, amount: '0.01' }]);
    await replies.waitFor(['dlq-canary'], 10_000);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM commands')).rows[0].n).toBe(commandsBefore + 1);
    expect(await balancesOf(db.pool, 77)).toEqual({ available: 501n, reserved: 0n, incoming: 0n });
  });
});
