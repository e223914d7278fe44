/**
 * Fetches the Central Bank's daily rates on a schedule (FX_RATES_URL, every
 * FX_FETCH_INTERVAL_S), with a timeout and a bound on the answer's size, and stores them. When
 * the source is down, slow or sends something malformed, the rates already stored stay as they
 * were: they keep their date, so reads refuse them once they are older than FX_RATE_AGE_MAX_S,
 * never serving a stale rate as a fresh one.
 */
import type pg from 'pg';
import type { Logger } from '../log.ts';
import { CbrFormatError, parseCbrDaily } from './cbr.ts';
import { storeCbrRates } from './store.ts';

export interface RatesFetcherOptions {
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly responseBytesMax: number;
  readonly pool: pg.Pool;
  readonly log: Logger;
}

export type FetchOutcome =
  | { readonly ok: true; readonly date: string; readonly currencies: number }
  | { readonly ok: false; readonly reason: string };

export class RatesFetcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<FetchOutcome> | null = null;
  /** The last document stored: what the table holds from this source. */
  lastGood: { readonly date: string; readonly currencies: number; readonly at: Date } | null = null;

  constructor(private readonly options: RatesFetcherOptions) {}

  /** Fetches now, then every interval; never throws. */
  start(): void {
    if (this.timer) return;
    void this.fetchOnce();
    this.timer = setInterval(() => void this.fetchOnce(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One fetch; a second call while one runs waits for it instead of fetching twice. */
  fetchOnce(): Promise<FetchOutcome> {
    this.running ??= this.fetchAndStore().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async fetchAndStore(): Promise<FetchOutcome> {
    const { url, timeoutMs, responseBytesMax, pool, log } = this.options;
    try {
      const body = await fetchBounded(url, timeoutMs, responseBytesMax);
      const rates = parseCbrDaily(body);
      requireNotFuture(rates.date, new Date());
      await storeCbrRates(pool, rates);
      this.lastGood = { date: rates.date, currencies: rates.rates.length, at: new Date() };
      log.info({ date: rates.date, currencies: rates.rates.length }, 'exchange rates stored');
      return { ok: true, date: rates.date, currencies: rates.rates.length };
    } catch (error) {
      const reason = `${(error as Error).name}: ${(error as Error).message}`.slice(0, 300);
      log.warn({ reason, lastGood: this.lastGood?.date ?? null }, 'exchange rates not fetched; the stored ones stay');
      return { ok: false, reason };
    }
  }
}

/**
 * The Central Bank publishes a day's rates the afternoon before; a date further ahead is not
 * one it would send, and a rate dated years ahead would never age.
 */
export const RATE_DATE_AHEAD_MS_MAX = 2 * 86_400_000;

export function requireNotFuture(date: string, now: Date): void {
  if (Date.parse(`${date}T00:00:00Z`) - now.getTime() > RATE_DATE_AHEAD_MS_MAX)
    throw new CbrFormatError(`the file is dated ${date}, more than two days ahead`);
}

export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
}

/** The body of a 200 answer, read to at most `bytesMax`, all within `timeoutMs`. */
export async function fetchBounded(url: string, timeoutMs: number, bytesMax: number): Promise<Buffer> {
  const signal = AbortSignal.timeout(timeoutMs);
  const response = await fetch(url, { signal, redirect: 'error' });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > bytesMax) {
      await reader.cancel();
      throw new ResponseTooLargeError(`the answer is over ${bytesMax} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}
