import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { RedisThresholdStore, type ThresholdVote } from '../../src/rules/thresholdScript.js';
import { redisKeys } from '../../src/keys.js';
import { MemoryThresholdStore } from '../../src/rules/thresholdMemory.js';

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

/** Random votes for two targets: repeated ids (retries), out-of-order times, small windows. */
const votes = fc.record({
  count: fc.integer({ min: 1, max: 25 }),
  withinMs: fc.integer({ min: 1, max: 60_000 }),
  cooldownMs: fc.integer({ min: 1000, max: 120_000 }),
  steps: fc.array(fc.record({
    id: fc.integer({ min: 0, max: 40 }), dt: fc.integer({ min: -5_000, max: 30_000 }), target: fc.constantFrom('a', 'b'),
    // Sometimes in a grace spell; sometimes from an instance that started a while before the line.
    grace: fc.option(fc.constantFrom('start:1', 'release:2'), { freq: 5 }),
    age: fc.option(fc.integer({ min: 0, max: 90_000 }), { freq: 3 }),
  }), { minLength: 1, maxLength: 60 }),
});

describe('threshold: the Lua script and its in-memory mirror agree', () => {
  it('on random vote sequences', async () => {
    await fc.assert(fc.asyncProperty(votes, async ({ count, withinMs, cooldownMs, steps }) => {
      const prefix = uniquePrefix('eq');
      prefixes.push(prefix);
      const redisStore = new RedisThresholdStore(redis, redisKeys(prefix));
      const memory = new MemoryThresholdStore();
      let t = 1_700_000_000_000;
      const list: ThresholdVote[] = steps.map((s) => {
        t += s.dt;
        const k = `${prefix}:${s.target}`;
        return {
          keys: { window: `${k}:w`, lines: `${k}:l`, firedBy: `${k}:f`, cooldown: `${k}:c`, spell: `${k}:s`, seen: `${k}:n`, graceSeen: `${k}:g` },
          eventId: `e${s.id}`, time: t, count, withinMs, cooldownMs, line: `line ${s.id} é/"\\`,
          rule: 'r', app: 'a', target: s.target, recordLine: `line ${s.id}`,
          ...(s.grace !== null ? { grace: s.grace } : {}),
          ...(s.age !== null ? { sinceMs: t - s.age } : {}),
        };
      });
      // Half in one pipeline, the rest one by one: batching must not change the answers.
      const half = Math.floor(list.length / 2);
      const fromRedis = [...await redisStore.vote(list.slice(0, half))];
      for (const v of list.slice(half)) fromRedis.push(...await redisStore.vote([v]));
      const fromMemory = await memory.vote(list);
      expect(fromRedis).toEqual(fromMemory);
    }), {
      numRuns: 60,
      // Found by this property: a 1 ms window expired in real time between two calls at one event time.
      examples: [[{ count: 2, withinMs: 1, cooldownMs: 1000, steps: [{ id: 1, dt: 0, target: 'b' as const, grace: null, age: null }, { id: 0, dt: 0, target: 'b' as const, grace: null, age: null }] }]],
    });
  });
});
