import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.ts';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true,
}) as {
  services: Record<string, Service>;
};
const ownServices = ['setup', 'consumer', 'gateway'];

describe('docker-compose.yml', () => {
  it('runs Kafka, PostgreSQL and the service processes', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['consumer', 'gateway', 'kafka', 'postgres', 'setup']);
    expect(compose.services.kafka!.image).toMatch(/^apache\/kafka:4\./);
    expect(compose.services.postgres!.image).toMatch(/^postgres:/);
  });

  it('gives Kafka, PostgreSQL and the gateway healthchecks', () => {
    for (const name of ['kafka', 'postgres', 'gateway', 'consumer'])
      expect(compose.services[name]!.healthcheck?.test, name).toBeDefined();
  });

  it.each(ownServices)('%s sets only variables the config schema knows, and a valid config', (name) => {
    const environment = compose.services[name]!.environment ?? {};
    const known = new Set(CONFIG_VARIABLES);
    for (const variable of Object.keys(environment)) expect(known.has(variable), variable).toBe(true);
    // `${X:?message}` makes compose refuse to start without X; stand in a value an operator would set.
    const values = Object.fromEntries(
      Object.entries(environment).map(([k, v]) => [
        k,
        String(v)
          .replace(/\$\{[A-Z_]+:-([^}]*)\}/, '$1')
          .replace(/^\$\{[A-Z_]+:\?[^}]*\}$/, `operator-set-${k}-`.padEnd(40, 'x')),
      ]),
    );
    expect(() => loadConfig(values)).not.toThrow();
  });

  it('requires every secret from the environment instead of falling back to a public one', () => {
    for (const name of ownServices) {
      const environment = compose.services[name]!.environment ?? {};
      for (const secret of ['JWT_SECRET', 'INTERNAL_COMMAND_SECRET', 'ANCHOR_SIGNING_KEY'])
        expect(String(environment[secret]), `${name} ${secret}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
    }
  });

  it.each(ownServices)(
    '%s runs node on a compiled entry point the build makes (no npm or shell above it)',
    async (name) => {
      const command = compose.services[name]!.command!;
      expect(command[0]).toBe('node');
      expect(command[1]).toMatch(/^dist\/.+\.js$/);
      const source = new URL(
        `../../${command[1]!.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')}`,
        import.meta.url,
      );
      await expect(readFile(source, 'utf8')).resolves.toContain('runCli');
    },
  );

  it('gives the gateway and the consumer healthchecks on their own ports, and starts the gateway after the consumer is ready', () => {
    expect(JSON.stringify(compose.services.gateway!.healthcheck?.test)).toContain('8000/readyz');
    expect(JSON.stringify(compose.services.consumer!.healthcheck?.test)).toContain('8001/readyz');
    expect(compose.services.gateway!.depends_on?.consumer?.condition).toBe('service_healthy');
  });

  it('starts the consumer and gateway only after setup succeeded', () => {
    for (const name of ['consumer', 'gateway']) {
      expect(compose.services[name]!.depends_on?.setup?.condition).toBe('service_completed_successfully');
    }
  });
});

describe('Dockerfile', () => {
  it('builds in one stage and runs the compiled code on a current LTS image, as a non-root user under an init, with a healthcheck', async () => {
    const text = await readFile(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const stages = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
    expect(stages.length).toBe(2);
    for (const image of stages) expect(image).toMatch(/^node:(22|24)[.-]/);
    expect(text).toMatch(/npm run build && npm prune --omit=dev/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^HEALTHCHECK /m);
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(text).toMatch(/^CMD \["node", "dist\/api\/main\.js"\]$/m);
  });
});

describe('the runtime the image ships is the one CI tests', () => {
  it('builds and runs the image on the Node major that scripts/node24.sh pins (package.json config.node24)', async () => {
    const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      config: { node24: string };
      engines: { node: string };
    };
    const major = manifest.config.node24.split('.')[0];
    const dockerfile = await readFile(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const bases = [...dockerfile.matchAll(/^FROM\s+node:([0-9]+)[^\s]*/gm)].map((m) => m[1]);
    expect(bases.length).toBeGreaterThan(0);
    expect(new Set(bases)).toEqual(new Set([major]));
    expect(manifest.engines.node).toContain(`^${major}.`);
  });
});
