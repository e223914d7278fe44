import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureKafkaJars, formatStorage, newClusterId, serverProperties } from '../../src/stack/local-kafka.ts';
import { testLog } from '../helpers/stack.ts';

describe('formatting the local broker storage', () => {
  it('accepts a cluster id that starts with a dash', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kafka-format-'));
    const properties = path.join(dir, 'server.properties');
    await writeFile(properties, serverProperties({ port: 1, controllerPort: 2 }, path.join(dir, 'data')));
    await formatStorage(await ensureKafkaJars(testLog), properties, '-AbCdEfGhIjKlMnOpQrStU');
    expect(await readFile(path.join(dir, 'data', 'meta.properties'), 'utf8')).toContain(
      'cluster.id=-AbCdEfGhIjKlMnOpQrStU',
    );
  });

  it('makes 22-character URL-safe ids', () => {
    for (let i = 0; i < 100; i += 1) expect(newClusterId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
