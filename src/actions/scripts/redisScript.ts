import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Runs a Lua script by its SHA and loads it once on NOSCRIPT (a restarted Redis forgets scripts),
 * without `defineCommand` on a connection someone else owns.
 */
export function luaScript(source: string) {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return redis.eval(source, keys.length, ...keys, ...args);
    }
  };
}
