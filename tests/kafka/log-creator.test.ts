import { PassThrough } from 'node:stream';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { isKafkajsNegativeTimeout, pinoLogCreator } from '../../src/kafka/client.ts';
import { createLogger } from '../../src/log.ts';

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().trim().split('\n')) lines.push(JSON.parse(line));
  });
  const logEntry = pinoLogCreator(createLogger({ level: 'debug', name: 'kafka-log' }, stream))(kafkajs.logLevel.ERROR);
  return { lines, logEntry };
}

describe("kafkajs's log lines in ours", () => {
  it('logs the coordinator and leader races of a broker start, and the restart they cause, at debug, and other errors as errors', async () => {
    const { lines, logEntry } = capture();
    const entry = (message: string, error?: string) =>
      logEntry({
        namespace: 'x',
        level: kafkajs.logLevel.ERROR,
        label: 'ERROR',
        log: { message, timestamp: '', ...(error ? { error } : {}) },
      });
    entry('Response GroupCoordinator(key: 10, version: 2)', 'The group coordinator is not available');
    entry("Crash: KafkaJSProtocolError: The coordinator is loading and hence can't process requests for this group");
    entry('Restarting the consumer in 100ms');
    entry('Response Produce(key: 0, version: 7)', 'Broker: Not enough replicas');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => line.level)).toEqual([20, 20, 20, 50]);
  });
});

describe("kafkajs's negative timer warning (tulios/kafkajs#1751)", () => {
  it('is recognised only as that warning, raised from kafkajs', () => {
    const fromKafkajs =
      'Error\n    at setTimeout (node:timers:120:19)\n    at RequestQueue.scheduleCheckPendingRequests (/app/node_modules/kafkajs/src/network/requestQueue/index.js:317:37)';
    expect(isKafkajsNegativeTimeout('TimeoutNegativeWarning', fromKafkajs)).toBe(true);
    expect(
      isKafkajsNegativeTimeout(
        'TimeoutNegativeWarning',
        'Error\n    at setTimeout (node:timers:120:19)\n    at mine (/app/src/x.ts:1:1)',
      ),
    ).toBe(false);
    expect(isKafkajsNegativeTimeout('DeprecationWarning', fromKafkajs)).toBe(false);
  });
});
