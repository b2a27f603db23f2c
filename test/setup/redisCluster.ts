import { startLocalCluster, type LocalCluster } from '../support/redisCluster.js';

/**
 * Vitest global setup of `npm run test:cluster`: MALLET_TEST_REDIS_CLUSTER_URL when given (seed
 * URLs of a cluster you run), else a fresh local 3-master cluster for this run, stopped after it.
 */
let cluster: LocalCluster | undefined;

export async function setup(): Promise<void> {
  if (process.env.MALLET_TEST_REDIS_CLUSTER_URL) return;
  cluster = await startLocalCluster(3);
  process.env.MALLET_TEST_REDIS_CLUSTER_URL = cluster.url;
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
