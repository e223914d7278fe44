/** The rates table (sql/0019_rates.sql): set by an operator or by the fetcher, read by balance reads. */
import type pg from 'pg';
import type { CbrRates } from './cbr.ts';

type Queryable = pg.Pool | pg.PoolClient;

export interface StoredRate {
  readonly currency: string;
  readonly units: string;
  readonly rub: string;
  readonly source: 'operator' | 'cbr';
  /** YYYY-MM-DD. */
  readonly rateDate: string;
  /** Seconds since the rate's day began (valid_from) or it was stored, whichever is earlier, by the database's clock. */
  readonly ageS: number;
}

const SQL_SET_RATE = `
  INSERT INTO rates (currency, units, rub, source, rate_date, valid_from, updated_at)
  VALUES ($1, $2, $3, 'operator', current_date, now(), now())
  ON CONFLICT (currency) DO UPDATE
  SET units = excluded.units, rub = excluded.rub, source = excluded.source, rate_date = excluded.rate_date,
      valid_from = excluded.valid_from, updated_at = excluded.updated_at`;

/** An operator's rate: `units` of the currency are worth `rub` roubles, from now. */
export async function setOperatorRate(db: Queryable, currency: string, units: string, rub = '1'): Promise<void> {
  await db.query(SQL_SET_RATE, [currency, units, rub]);
}

// A rate for a day counts from that day's midnight in Moscow, where the Central Bank sets it.
const SQL_UPSERT_CBR = `
  INSERT INTO rates (currency, units, rub, source, rate_date, valid_from, updated_at)
  SELECT k.currency, k.units, k.rub, 'cbr', $4::date, $4::date::timestamp AT TIME ZONE 'Europe/Moscow', now()
  FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS k(currency, units, rub)
  WHERE k.currency <> 'RUB'
  ON CONFLICT (currency) DO UPDATE
  SET units = excluded.units, rub = excluded.rub, source = excluded.source, rate_date = excluded.rate_date,
      valid_from = excluded.valid_from, updated_at = excluded.updated_at
  -- Newer wins: a file for an earlier moment (a stale cache on the way, or today's file after an
  -- operator set a rate this afternoon) never replaces a rate valid from later.
  WHERE rates.valid_from <= excluded.valid_from`;

export async function storeCbrRates(db: Queryable, rates: CbrRates): Promise<void> {
  await db.query(SQL_UPSERT_CBR, [
    rates.rates.map((r) => r.currency),
    rates.rates.map((r) => r.units),
    rates.rates.map((r) => r.rub),
    rates.date,
  ]);
}

const SQL_RATES = `
  SELECT currency, units::text, rub::text, source, to_char(rate_date, 'YYYY-MM-DD') AS rate_date,
         -- From the earlier of the two: a rate for tomorrow (published the day before) ages from when it was fetched.
         extract(epoch FROM clock_timestamp() - least(valid_from, updated_at))::float8 AS age_s
  FROM rates`;

export async function rateOf(db: Queryable, currency: string): Promise<StoredRate | null> {
  const { rows } = await db.query({ name: 'fx_rate_of', text: `${SQL_RATES} WHERE currency = $1`, values: [currency] });
  return rows[0] ? storedRate(rows[0]) : null;
}

export async function listRates(db: Queryable): Promise<StoredRate[]> {
  const { rows } = await db.query(`${SQL_RATES} ORDER BY currency`);
  return rows.map(storedRate);
}

function storedRate(row: Record<string, unknown>): StoredRate {
  return {
    currency: String(row.currency),
    units: normalized(String(row.units)),
    rub: normalized(String(row.rub)),
    source: row.source as StoredRate['source'],
    rateDate: String(row.rate_date),
    ageS: Number(row.age_s),
  };
}

/** numeric's text without trailing zeros after the point ("92.50580" is "92.5058", "1.0" is "1"). */
function normalized(decimal: string): string {
  return decimal.includes('.') ? decimal.replace(/0+$/, '').replace(/\.$/, '') : decimal;
}
