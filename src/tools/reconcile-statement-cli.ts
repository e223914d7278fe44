/**
 * npm run reconcile-statement -- --file statement.csv --service 101
 *     [--map reference=payment_id,amount=gross] [--amount-tolerance 0.50] [--time-drift-s 86400] [--rerun]
 *
 * Reconciles a payment provider's statement against the service's deposits and withdrawals
 * (docs/reconciliation.md), stores the run, and prints its summary and id; the results are at
 * GET /api/reconciliations/<id>. Exits 1 when anything is left unmatched, 2 on a bad file.
 */
import { stat, readFile } from 'node:fs/promises';
import { parseArgs, runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { parseAmountTolerance, runReconciliation } from '../ledger/reconciliation/run.ts';
import { parseMapping, StatementError } from '../ledger/reconciliation/statement-csv.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';

const USAGE =
  'usage: npm run reconcile-statement -- --file <statement.csv> --service <id> [--map column=header,...] [--amount-tolerance 0.00] [--time-drift-s 86400]';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), {
    values: ['file', 'service', 'map', 'amount-tolerance', 'time-drift-s'],
    flags: ['rerun'],
  });
  const file = args.values.get('file');
  const serviceId = Number(args.values.get('service'));
  if (!file || !Number.isSafeInteger(serviceId) || serviceId < 1) throw new UsageError(USAGE);
  const config = loadConfig(process.env, { secrets: 'unused' });
  const { size } = await stat(file);
  if (size > config.reconciliation.bytesMax)
    throw new UsageError(
      `${file} is ${size} bytes, more than RECONCILIATION_BYTES_MAX (${config.reconciliation.bytesMax})`,
    );
  const drift = args.values.has('time-drift-s')
    ? Number(args.values.get('time-drift-s'))
    : config.reconciliation.timeDriftS;
  if (!Number.isSafeInteger(drift) || drift < 0)
    throw new UsageError('--time-drift-s must be a whole number of seconds');
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-reconcile-statement');
  try {
    const { run, repeated } = await runReconciliation(pool, {
      serviceId,
      statement: await readFile(file),
      mapping: parseMapping(args.values.get('map') ?? ''),
      options: {
        amountToleranceMinor: toleranceOf(args.values.get('amount-tolerance'), config),
        timeDriftMs: drift * 1000,
      },
      principal: 'cli',
      rerun: args.flags.has('rerun'),
    });
    const summary = run.summary as {
      categories: Record<string, { count: number; statement: string; ledger: string }>;
      unmatched: { count: number };
    };
    console.log(`reconciliation ${run.id}${repeated ? ' (this file was reconciled before: the same run)' : ''}`);
    console.log('category                 count    statement       ledger');
    for (const [category, s] of Object.entries(summary.categories))
      console.log(
        `${category.padEnd(22)} ${String(s.count).padStart(7)} ${s.statement.padStart(12)} ${s.ledger.padStart(12)}`,
      );
    console.log(`results: GET /api/reconciliations/${run.id} (format=csv for a spreadsheet)`);
    if (summary.unmatched.count > 0) process.exitCode = 1;
  } catch (error) {
    if (!(error instanceof StatementError)) throw error;
    console.error(`${file}: ${error.message}; nothing was stored`);
    process.exitCode = 2;
  } finally {
    await pool.end();
  }
});

function toleranceOf(text: string | undefined, config: ReturnType<typeof loadConfig>): bigint {
  if (text === undefined) return BigInt(config.reconciliation.amountTolerance);
  const parsed = parseAmountTolerance(text);
  if (!parsed.ok) throw new UsageError(`--amount-tolerance ${parsed.message}`);
  return parsed.minor;
}
