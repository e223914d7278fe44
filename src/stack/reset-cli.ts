/**
 * `npm run reset`: removes the data of the local broker and the local PostgreSQL server that
 * `npm start` runs, so the next `npm start` begins with an empty ledger and empty topics. The
 * server's data may live outside the clone (see server-files.ts); this finds it. It refuses
 * while either server runs, and never touches a `DATABASE_URL` or `KAFKA_BROKERS` of yours.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { REPO_ROOT } from './local-kafka.ts';
import { localPostgresDataDir, removeLocalPostgres } from './local-postgres.ts';
import { portIsFree } from './ports.ts';

await runCli(async () => {
  const config = loadConfig(process.env, { secrets: 'unused' });
  const log = createLogger({ level: config.logLevel, name: 'reset' });
  const servers = [
    { what: 'the local Kafka broker', port: config.kafka.local.port },
    { what: 'the local PostgreSQL server', port: config.db.local.port },
  ];
  for (const { what, port } of servers)
    if (!(await portIsFree(port)))
      throw new UsageError(`port ${port} is in use (${what}?): stop npm start first, then run npm run reset again`);
  const postgresData = await localPostgresDataDir(config.db.local.dir, log);
  await removeLocalPostgres(config.db.local.dir, log);
  await rm(path.resolve(REPO_ROOT, config.kafka.local.dir), { recursive: true, force: true });
  console.log(`removed ${postgresData} and ${config.kafka.local.dir}: the next npm start begins with an empty ledger`);
}, 'usage: npm run reset   (stop npm start first; removes its local broker and database data)');
