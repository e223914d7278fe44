/**
 * npm run anchor                    anchors every history chain now, and publishes what is unpublished
 * npm run anchor -- --public-key    prints the key id and the public key anchors are checked with
 *
 * docs/history-chain.md. Consumers anchor by themselves every ANCHOR_INTERVAL_S; this is the
 * same, on demand (before a month's close, an audit, or a test).
 */
import { parseArgs, runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { brokerSecurity, createKafka, PRODUCER_OPTIONS } from '../kafka/client.ts';
import { anchorSigner } from '../ledger/anchor-signing.ts';
import { createAnchor } from '../ledger/store/anchors.ts';
import { createLogger } from '../log.ts';
import { anchorRecord, publishAnchors } from '../consumer/anchor-task.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { anchorSignerOf } from './anchor-keys.ts';
import { brokersOf } from '../stack/local-kafka.ts';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: [], flags: ['public-key'] });
  if (args.positional.length > 0) throw new UsageError('usage: npm run anchor [-- --public-key]');
  const config = loadConfig(process.env, { secrets: 'unused' });
  if (args.flags.has('public-key')) {
    const { keyId, publicKeyBase64 } = anchorSigner(config.anchors.signingKey);
    console.log(JSON.stringify({ key_id: keyId, public_key: publicKeyBase64 }));
    return;
  }
  const signer = anchorSignerOf(config);
  if (typeof signer === 'string') throw new UsageError(signer);
  const log = createLogger({ level: config.logLevel, name: 'anchor' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-anchor');
  const kafka = createKafka({
    brokers: brokersOf(config.kafka),
    clientId: `${config.kafka.clientId}-anchor`,
    log,
    ...brokerSecurity(config.kafka),
  });
  const producer = kafka.producer(PRODUCER_OPTIONS);
  try {
    const anchor = await createAnchor(pool, signer);
    if (!anchor) throw new UsageError('another process is making an anchor right now; run this again in a moment');
    await producer.connect();
    const published = await publishAnchors(pool, async (messages) => {
      await producer.send({ topic: config.topics.anchors, acks: -1, messages: [...messages] });
    });
    console.log(anchorRecord(anchor));
    console.error(`anchored ${anchor.users} chain(s); published ${published} anchor(s) to ${config.topics.anchors}`);
  } finally {
    await producer.disconnect();
    await pool.end();
  }
});
