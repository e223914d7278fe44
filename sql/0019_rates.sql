-- Exchange rates for showing a balance in another currency (GET /api/balances/?currency=USD).
-- The ledger stays in roubles; these rates only convert what a read shows.
--
-- A rate is a ratio of two exact decimals: `units` of the currency are worth `rub` roubles. An
-- operator's `npm run rates -- set USD 0.0108` stores 0.0108 USD = 1 RUB; the Central Bank of
-- Russia's daily file says "Nominal units cost Value roubles" (10 CNY = 127.3456 RUB), stored as
-- given. Either way a conversion is exact until its one rounding, half-even to the currency's
-- minor unit.
--
-- `rate_date` is the day the rate is for, and `valid_from` the instant its age counts from: when
-- an operator set it, or the start of the Central Bank's date in Moscow. A read refuses a rate
-- older than FX_RATE_AGE_MAX_S, so neither a source that stopped answering nor one that keeps
-- serving an old file yields a stale number silently. `updated_at` is when it was last written.
CREATE TABLE rates (
  currency text PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$' AND currency <> 'RUB'),
  units numeric NOT NULL CHECK (units > 0),
  rub numeric NOT NULL CHECK (rub > 0),
  source text NOT NULL CHECK (source IN ('operator', 'cbr')),
  rate_date date NOT NULL,
  valid_from timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
