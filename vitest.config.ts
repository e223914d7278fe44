import { defineConfig } from 'vitest/config';

// Two projects: `unit` for pure code (no services), `integration` for tests that talk to the
// real Kafka broker and the real PostgreSQL that the global setup provides.
export default defineConfig({
  test: {
    reporters: process.env.CI ? ['default'] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/**/*.int.test.ts', 'node_modules/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/**/*.int.test.ts'],
          globalSetup: ['tests/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Integration files share one broker and one PostgreSQL on a 2-core machine; running
          // them one at a time keeps timings honest and avoids starving the broker.
          fileParallelism: false,
        },
      },
    ],
  },
});
