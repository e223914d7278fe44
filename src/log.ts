/**
 * One pino logger per process. Secrets are redacted by path, so a token or password that
 * reaches a log call by accident is still never written. JSON lines for machines; on a
 * terminal (stdout is a TTY), one readable line per entry instead.
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
  if (destination) return pino(settings, destination);
  return process.stdout.isTTY
    ? pino(settings, { write: (line: string) => process.stdout.write(prettyLine(line)) })
    : pino(settings);
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every line has, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'service', 'component', 'pid', 'hostname']);

/** `12:00:01.234 WARN  consumer: message key=value ...` from one pino JSON line. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
  const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
  const source = entry.component ?? entry.service;
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${[time, level, `${String(source)}:`, String(entry.msg ?? ''), ...fields].join(' ')}\n`;
}
