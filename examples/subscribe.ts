/**
 * A downstream subscriber of the balance events topic (docs/events.md): validates each event,
 * applies balance changes once per user in sequence order (a copy, sequence at or below the last
 * seen, is skipped; a jump is reported as a gap), prints one line per event, and one per
 * threshold alert (a copy of an alert has the same event_id).
 * Run it against `npm start` (in another terminal); it reads from the beginning and stops after
 * EXAMPLE_SECONDS (default 10):
 *   npm run example:events   (KAFKA_BROKERS, or the local broker of npm start)
 */
import { randomUUID } from 'node:crypto';
import { balanceEventSchema } from '../src/commands/event-schema.ts';
import { loadConfig } from '../src/config.ts';
import { createKafka } from '../src/kafka/client.ts';
import { createLogger } from '../src/log.ts';
import { brokersOf } from '../src/stack/local-kafka.ts';

const config = loadConfig({ ALLOW_DEV_SECRETS: 'true', ...process.env });
const seconds = Number(process.env.EXAMPLE_SECONDS ?? 10);
const kafka = createKafka({
  brokers: brokersOf(config.kafka),
  clientId: 'example-subscriber',
  log: createLogger({ level: 'warn' }),
});
// A real subscriber keeps its group id (and its last sequences) across restarts.
const consumer = kafka.consumer({ groupId: `example-subscriber-${randomUUID()}` });
const lastSequence = new Map<number, number>();
/** A real subscriber would keep these, or deduplicate downstream; bounded here by the run's length. */
const alertsSeen = new Set<string>();

await consumer.connect();
await consumer.subscribe({ topic: config.topics.events, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ message }) => {
    const parsed = balanceEventSchema.safeParse(JSON.parse(String(message.value)));
    if (!parsed.success) {
      console.log(`not a balance event, skipped: ${parsed.error.issues[0]?.message}`);
      return;
    }
    const event = parsed.data;
    if (event.type === 'threshold_crossed') {
      if (alertsSeen.has(event.event_id)) return;
      alertsSeen.add(event.event_id);
      const { alert_id, direction, threshold } = event.alert;
      console.log(
        `user ${event.user_id} alert ${alert_id}: available ${event.balances.available} went ${direction} ${threshold}`,
      );
      return;
    }
    const last = lastSequence.get(event.user_id) ?? 0;
    if (event.sequence <= last) return; // a copy of an event already applied
    if (event.sequence > last + 1)
      console.log(`user ${event.user_id}: gap, events ${last + 1}-${event.sequence - 1} missed`);
    lastSequence.set(event.user_id, event.sequence);
    const { available, reserved } = event.balances;
    console.log(`user ${event.user_id} #${event.sequence} ${event.type}: available ${available}, reserved ${reserved}`);
  },
});
await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
await consumer.disconnect();
