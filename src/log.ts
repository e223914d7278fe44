/**
 * One pino logger per process. Secrets are redacted by path, so a token or password that
 * reaches a log call by accident is still never written.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'access',
  '*.access',
  'refresh',
  '*.refresh',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export function createLogger(options: { level: string; name?: string }, destination?: DestinationStream): Logger {
  const settings = {
    level: options.level,
    base: { service: options.name ?? 'balance' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(settings, destination) : pino(settings);
}
