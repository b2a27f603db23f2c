import { defineConfig } from 'vitest/config';

/** mallet on a real Redis Cluster (a local 3-master cluster started by the global setup). */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    globalSetup: ['test/setup/redisCluster.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
