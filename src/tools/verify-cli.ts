/** `npm run verify`: checks the ledger's invariants; exits 1 naming each violation. */
import { loadConfig } from '../config.ts';
import { runCli } from '../cli.ts';
import { redactUrl } from '../db/database.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { createPool } from '../db/pool.ts';
import { formatMinor } from '../commands/money.ts';
import { trustedAnchorKeys } from './anchor-keys.ts';
import { ALL_CHECKS, unsettledTransfers, verifyLedger } from '../ledger/verify.ts';

await runCli(async () => {
  const config = loadConfig(process.env, { secrets: 'unused' });
  const url = process.argv[2] === '--db' && process.argv[3] ? process.argv[3] : await resolveDatabaseUrl(config.db);
  const pool = createPool(url, config.db, 'balance-verify');
  try {
    const started = performance.now();
    // The latest anchor must be signed with a trusted key: ANCHOR_PUBLIC_KEYS, or ANCHOR_SIGNING_KEY's.
    const violations = await verifyLedger(pool, trustedAnchorKeys(config));
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    for (const check of ALL_CHECKS) {
      const failed = violations.find((v) => v.check === check.name);
      console.log(`${failed ? 'FAIL' : 'ok  '} ${check.name}: ${check.description}`);
      for (const row of failed?.rows ?? []) console.log(`       ${JSON.stringify(row)}`);
    }
    const unsettled = await unsettledTransfers(pool);
    console.log(
      `in flight: ${formatMinor(unsettled.minor)} transferred to ${unsettled.users} user(s) waits for its settle`,
    );
    console.log(
      `${violations.length === 0 ? 'ledger verified' : `${violations.length} check(s) failed`} (${redactUrl(url)}, ${seconds} s)`,
    );
    if (violations.length > 0) process.exitCode = 1;
  } finally {
    await pool.end();
  }
});
