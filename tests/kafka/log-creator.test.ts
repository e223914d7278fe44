import { PassThrough } from 'node:stream';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { pinoLogCreator } from '../../src/kafka/client.ts';
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
