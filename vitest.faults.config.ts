import { defineConfig } from 'vitest/config';

/** The fault suite: private redis-servers killed and restarted, mallet processes killed under load. */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/setup/redis.ts'],
    testTimeout: 150_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
