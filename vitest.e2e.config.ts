import { defineConfig } from 'vitest/config';

/** End-to-end tests with real Puma and Sidekiq processes (Debian's ruby, puma, ruby-sidekiq). */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/setup/redis.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
