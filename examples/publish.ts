/**
 * Publishes a few commands straight to Kafka with the typed client and prints the replies.
 * Run it against `npm start` (in another terminal):
 *   npm run example   (KAFKA_BROKERS, or the local broker of npm start)
 */
import { randomUUID } from 'node:crypto';
import { CommandClient } from '../src/client/command-client.ts';
import { loadConfig } from '../src/config.ts';
import { createCommandSchema, type CommandInput } from '../src/commands/schema.ts';
import { createKafka } from '../src/kafka/client.ts';
import { createLogger } from '../src/log.ts';
import { brokersOf } from '../src/stack/local-kafka.ts';

const config = loadConfig({ ALLOW_DEV_SECRETS: 'true', ...process.env });
const log = createLogger({ level: 'warn', name: 'example' });
const client = new CommandClient({
  kafka: createKafka({ brokers: brokersOf(config.kafka), clientId: 'example', log }),
  commandTopic: config.topics.commands,
  replyTopic: config.topics.replies,
  waitingRequestsMax: 100,
  log,
});
const schema = createCommandSchema(config.limits);
const run = randomUUID().slice(0, 8);
const commands: CommandInput[] = [
  { id: `${run}-1`, type: 'deposit', user_id: 42, amount: '100.00', comment: 'example top-up' },
  { id: `${run}-2`, type: 'reserve', user_id: 42, service_id: 7, order_id: 1, amount: '30.00' },
  { id: `${run}-3`, type: 'capture', user_id: 42, service_id: 7, order_id: 1, amount: '25.00' },
  { id: `${run}-4`, type: 'transfer', user_id: 42, recipient_id: 43, amount: '10.00' },
  { id: `${run}-5`, type: 'withdraw', user_id: 42, amount: '1000.00' },
  { id: `${run}-1`, type: 'deposit', user_id: 42, amount: '100.00', comment: 'example top-up' },
];

await client.start();
try {
  for (const input of commands) {
    const reply = await client.request(schema.parse(input), { timeoutMs: 10_000 });
    console.log(
      `${input.type.padEnd(8)} ${input.id}: ${reply ? `${reply.status} ${reply.code}${reply.duplicate ? ' (duplicate)' : ''} ${JSON.stringify(reply.balances)}` : 'no reply within 10 s'}`,
    );
  }
} finally {
  await client.stop();
}
