/** npm run reconcile -- --a <database url> --b <database url>: lists differences, exits 1 if any. */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { redactUrl } from '../db/database.ts';
import { createPool } from '../db/pool.ts';
import { parseArgs } from '../cli.ts';
import { DIFFERENCES_SHOWN_MAX, reconcile } from './reconcile.ts';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: ['a', 'b'], flags: [] });
  const [urlA, urlB] = [args.values.get('a'), args.values.get('b')];
  if (!urlA || !urlB) throw new UsageError('usage: npm run reconcile -- --a <database url> --b <database url>');
  const config = loadConfig(process.env, { secrets: 'unused' });
  const a = createPool(urlA, config.db, 'balance-reconcile');
  const b = createPool(urlB, config.db, 'balance-reconcile');
  try {
    const differences = await reconcile(a, b);
    for (const d of differences.slice(0, DIFFERENCES_SHOWN_MAX)) console.log(`${d.what} ${d.key}: a=${d.a} b=${d.b}`);
    if (differences.length > DIFFERENCES_SHOWN_MAX)
      console.log(`... and ${differences.length - DIFFERENCES_SHOWN_MAX} more`);
    console.log(
      differences.length === 0
        ? `identical: ${redactUrl(urlA)} and ${redactUrl(urlB)}`
        : `${differences.length} difference(s)`,
    );
    if (differences.length > 0) process.exitCode = 1;
  } finally {
    await a.end();
    await b.end();
  }
});
