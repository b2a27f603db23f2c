import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { startService, type Service } from '../../src/server/service.js';
import { cleanupPrefix, testRedisUrl } from './redis.js';

/** `mallet serve` (HTTP and worker) in the test's process, silent, on a free loopback port. */
export function startSilentService(env: Record<string, string>, dir: string, opts: { worker?: boolean | 'thread' } = {}): Promise<Service> {
  return startService({ config: loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', ...env }, dir), logger: pino({ level: 'silent' }), ...opts });
}

/**
 * `mallet serve` as above, on the shared test Redis under the test's own key and queue prefixes;
 * and the action queue seen through `redis`, to read the jobs. `env`: the rest of the
 * environment (the app's Redis, tokens). `worker: false` runs no worker: the job is then the
 * evidence, and no action of it lands in the shared Redis. `close()` closes both and removes the
 * test's keys.
 */
export async function startTestService(o: {
  redis: Redis; prefix: string; queuePrefix: string; drainPassword: string; rulesFile: string; dir: string; env?: Record<string, string>; worker?: boolean | 'thread';
}): Promise<{ service: Service; queue: Queue; close(): Promise<void> }> {
  const service = await startSilentService({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: o.prefix, MALLET_QUEUE_PREFIX: o.queuePrefix,
    MALLET_DRAIN_PASSWORD: o.drainPassword, MALLET_RULES: o.rulesFile, ...o.env,
  }, o.dir, o.worker === undefined ? {} : { worker: o.worker });
  const queue = new Queue(ACTION_QUEUE, { connection: o.redis, prefix: o.queuePrefix });
  return {
    service, queue,
    async close() {
      await service.close();
      await queue.close();
      await cleanupPrefix(o.redis, o.prefix, o.queuePrefix);
    },
  };
}
