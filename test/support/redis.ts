import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis every test talks to (set by test/setup/redis.ts). */
export function testRedisUrl(): string {
  const url = process.env.MALLET_TEST_REDIS_URL;
  if (!url) throw new Error('MALLET_TEST_REDIS_URL is unset: run tests through vitest (global setup)');
  return url;
}

/** A key prefix no other test (or run) uses, so files run in parallel and repeatedly. */
export function uniquePrefix(name = 't'): string {
  return `mtest-${name}-${randomBytes(5).toString('hex')}`;
}

export function testRedis(): Redis {
  return new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
}

/** Delete every key under the prefix(es) (SCAN, never KEYS). */
export async function cleanupPrefix(redis: Redis, ...prefixes: string[]): Promise<void> {
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  }
}
