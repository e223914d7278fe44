/**
 * npm run rates -- set <CUR> <units per rouble>     e.g. set USD 0.0108 (1 RUB = 0.0108 USD)
 * npm run rates -- list
 * npm run rates -- fetch                             once, from FX_RATES_URL (the Central Bank's daily file)
 *
 * The rates balance reads convert with (GET /api/balances/?currency=USD). The ledger stays in
 * roubles; a rate older than FX_RATE_AGE_MAX_S is refused by reads (409 rate_unavailable).
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';

import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { createPool } from '../db/pool.ts';
import { CURRENCY_PATTERN, LEDGER_CURRENCY, minorDigitsOf, parseDecimal } from '../fx/convert.ts';
import { RatesFetcher } from '../fx/fetcher.ts';
import { listRates, setOperatorRate } from '../fx/store.ts';
import { createLogger } from '../log.ts';
import { parseArgs } from '../cli.ts';

const USAGE = 'usage: npm run rates -- set <CUR> <units per rouble> | list | fetch';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: [], flags: [] });
  const config = loadConfig(process.env, { secrets: 'unused' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-rates');
  try {
    const [command, ...rest] = args.positional;
    if (command === 'set' && rest.length === 2) return await set(pool, rest[0]!, rest[1]!);
    if (command === 'list' && rest.length === 0) return await list(pool, config.fx.rateAgeMaxS);
    if (command === 'fetch' && rest.length === 0) return await fetchOnce(pool, config);
    throw new UsageError(USAGE);
  } finally {
    await pool.end();
  }
});

async function set(pool: Parameters<typeof setOperatorRate>[0], currency: string, units: string): Promise<void> {
  if (!CURRENCY_PATTERN.test(currency) || currency === LEDGER_CURRENCY || minorDigitsOf(currency) === null)
    throw new UsageError(`${JSON.stringify(currency)} is not an ISO 4217 currency code other than RUB`);
  let parsed: { digits: bigint } | null = null;
  try {
    parsed = parseDecimal(units);
  } catch {
    parsed = null;
  }
  if (!parsed || parsed.digits === 0n)
    throw new UsageError(`${JSON.stringify(units)} is not a positive decimal (units of ${currency} per rouble)`);
  await setOperatorRate(pool, currency, units);
  console.log(`1 RUB = ${units} ${currency} (operator, from now)`);
}

async function list(pool: Parameters<typeof listRates>[0], ageMaxS: number): Promise<void> {
  for (const rate of await listRates(pool)) {
    const state = rate.ageS > ageMaxS ? 'stale' : 'fresh';
    console.log(
      `${rate.currency}\t${rate.units} ${rate.currency} = ${rate.rub} RUB\t${rate.source}\t${rate.rateDate}\t${state}`,
    );
  }
}

async function fetchOnce(
  pool: ConstructorParameters<typeof RatesFetcher>[0]['pool'],
  config: ReturnType<typeof loadConfig>,
) {
  if (!config.fx.ratesUrl) throw new UsageError('set FX_RATES_URL to the daily rates file to fetch from');
  const fetcher = new RatesFetcher({
    url: config.fx.ratesUrl,
    intervalMs: config.fx.fetchIntervalS * 1_000,
    timeoutMs: config.fx.fetchTimeoutMs,
    responseBytesMax: config.fx.responseBytesMax,
    pool,
    log: createLogger({ level: 'warn', name: 'rates' }),
  });
  const outcome = await fetcher.fetchOnce();
  if (!outcome.ok) throw new Error(`not fetched: ${outcome.reason}`);
  console.log(`stored ${outcome.currencies} rates for ${outcome.date}`);
}
