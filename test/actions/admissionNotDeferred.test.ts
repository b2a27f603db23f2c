import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ActionQueue } from '../../src/actions/queue.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DEFAULT_LIMITS } from '../../src/rules/RuleSet.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { makeFiring, silentLogger } from './harness.js';

/**
 * A firing's admission is written to Redis in the turn it is submitted, not after the event
 * loop's other I/O callbacks: the service's connections are auto-pipelined (the drain's), and an
 * auto-pipelined command waits for setImmediate — behind every other body handled in that turn.
 */
const redis = testRedis();
const prefix = uniquePrefix('adm');
const queuePrefix = uniquePrefix('admq');
afterAll(async () => { await cleanupPrefix(redis, prefix, queuePrefix); redis.disconnect(); });

describe('the action queue\'s connection', () => {
  it('sends a firing\'s admission before the turn\'s setImmediate callbacks, though the service\'s connection is auto-pipelined', async () => {
    const drain = new Redis(testRedisUrl(), { enableAutoPipelining: true });
    const queue = new ActionQueue({
      connection: drain, queuePrefix, keys: redisKeys(prefix), metrics: createMetrics(undefined, { defaults: false }),
      logger: silentLogger, dryRun: false, getLimits: () => DEFAULT_LIMITS,
    });
    try {
      await queue.connection.ping();
      const stream = (queue.connection as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
      const write = stream.write.bind(stream);
      const written: string[] = [];
      stream.write = (chunk: unknown, ...rest: unknown[]) => { written.push(String(chunk)); return write(chunk, ...rest); };
      let beforeImmediate = -1;
      setImmediate(() => { beforeImmediate = written.length; });
      const firing = makeFiring({ actions: [{ type: 'redis-stop-key', key: `${prefix}:puma::stop::web.1`, value: '1', ttlMs: 60_000 }] });
      expect(await queue.submit([firing])).toEqual(['enqueued']);
      // The admission script (EVALSHA, or EVAL the first time) was written before that callback ran.
      expect(beforeImmediate).toBeGreaterThan(0);
      expect(written.slice(0, beforeImmediate).join('')).toMatch(/^\*\d+\r\n\$\d+\r\neval(sha)?\r\n/i);
    } finally {
      await queue.close();
      drain.disconnect();
    }
  });
});
