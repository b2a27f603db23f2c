import { defineConfig } from 'vitest/config';

/** Hostile input: fuzzed and oversized bodies, injection, slowloris, many apps, a flooded syslog port. */
export default defineConfig({
  test: {
    include: ['test/hostile/**/*.test.ts'],
    globalSetup: ['test/setup/redis.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    // Heap after GC is measured (10 000 apps).
    execArgv: ['--expose-gc'],
  },
});
