import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { startService, type Service } from '../../src/server/service.js';
import { testRedisUrl } from './redis.js';

/**
 * `mallet serve` (HTTP and worker) in the test's process, on the shared test Redis under the
 * test's own key and queue prefixes, silent, on a free loopback port; and the action queue seen
 * through `redis`, to read the jobs. `env`: the rest of the environment (the app's Redis, tokens).
 */
export async function startTestService(o: {
  redis: Redis; prefix: string; queuePrefix: string; drainPassword: string; rulesFile: string; dir: string; env?: Record<string, string>;
}): Promise<{ service: Service; queue: Queue }> {
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: o.prefix, MALLET_QUEUE_PREFIX: o.queuePrefix,
    PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: o.drainPassword, MALLET_RULES: o.rulesFile, LOG_LEVEL: 'silent',
    ...o.env,
  }, o.dir);
  const service = await startService({ config, logger: pino({ level: 'silent' }) });
  const queue = new Queue(ACTION_QUEUE, { connection: o.redis, prefix: o.queuePrefix });
  return { service, queue };
}
