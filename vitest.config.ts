import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'test/cluster/**', 'test/faults/**', 'test/hostile/**', 'node_modules/**'],
    globalSetup: ['test/setup/redis.ts'],
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
