import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { RedisPredictStore, predictPart, type PredictVote } from '../../src/rules/predictScript.js';
import { asBodyAnswer, bodyPredictAnswer, type BodyPredictAnswer } from '../support/predictAnswers.js';
import { callBodyScript, encodeBody } from '../../src/server/bodyScript.js';
import { MemoryPredictStore } from '../../src/rules/predictMemory.js';
import { PREDICT_BOUNDS } from '../../src/rules/predict.js';

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

/**
 * Random series for two targets of two instances each (a target's set holds both; the fit keeps
 * to one): rising, flat or noisy values (fractional MB as Heroku writes
 * them, and arbitrary doubles), repeated ids (retries), out-of-order and equal times, windows
 * short enough to slide, and runs long enough to meet the point cap.
 */
const runs = fc.record({
  withinMs: fc.integer({ min: 1000, max: 3_600_000 }),
  overMs: fc.integer({ min: 60_000, max: 1_800_000 }),
  minSamples: fc.integer({ min: 3, max: 30 }),
  limit: fc.oneof(fc.constant(512), fc.double({ min: 1, max: 4096, noNaN: true })),
  steps: fc.array(fc.record({
    id: fc.integer({ min: 0, max: 500 }),
    dt: fc.integer({ min: -30_000, max: 60_000 }),
    value: fc.oneof(fc.integer({ min: 0, max: 60_000 }).map((c) => c / 100), fc.double({ min: 0, max: 8192, noNaN: true })),
    target: fc.constantFrom('a', 'b'),
    instance: fc.constantFrom('x', 'y'),
  }), { minLength: 1, maxLength: 120 }),
});

describe('predict: the Lua script and its in-memory mirror agree', () => {
  it('on random series', async () => {
    await fc.assert(fc.asyncProperty(runs, async ({ withinMs, overMs, minSamples, limit, steps }) => {
      const prefix = uniquePrefix('peq');
      prefixes.push(prefix);
      const store = new RedisPredictStore(redis);
      const memory = new MemoryPredictStore();
      let t = 1_700_000_000_000;
      const list: PredictVote[] = steps.map((s) => {
        t += s.dt;
        const k = `${prefix}:${s.target}`;
        return {
          keys: { points: `${k}:p`, state: `${k}:v` },
          eventId: `e${s.id}`, time: t, value: s.value, limit, withinMs, overMs, minSamples, instance: s.instance,
        };
      });
      // Half in one pipeline, the rest one by one: batching must not change the answers.
      const half = Math.floor(list.length / 2);
      const fromRedis = [...await store.predict(list.slice(0, half))];
      for (const v of list.slice(half)) fromRedis.push(...await store.predict([v]));
      expect(fromRedis).toEqual(await memory.predict(list));
    }), { numRuns: 60 });
  });

  it('past the point cap: a long steady series keeps at most maxPoints samples and still agrees', async () => {
    const prefix = uniquePrefix('peq');
    prefixes.push(prefix);
    const store = new RedisPredictStore(redis);
    const memory = new MemoryPredictStore();
    const keys = { points: `${prefix}:p`, state: `${prefix}:v` };
    const n = PREDICT_BOUNDS.maxPoints + 100;
    // One sample a second within a 6 h window: only the cap bounds the series.
    const list: PredictVote[] = Array.from({ length: n }, (_, i) => ({
      keys, eventId: `e${i}`, time: 1_700_000_000_000 + i * 1000, value: 100 + i * 0.01 + (i % 7) * 0.3, limit: 512,
      withinMs: 3_600_000, overMs: 6 * 3_600_000, minSamples: 10, instance: 'a',
    }));
    const fromRedis = await store.predict(list);
    const fromMemory = await memory.predict(list);
    expect(fromRedis).toEqual(fromMemory);
    expect(fromRedis[n - 1]).toMatchObject({ samples: PREDICT_BOUNDS.maxPoints });
    expect(await redis.zcard(keys.points)).toBe(PREDICT_BOUNDS.maxPoints);
    // Each kept sample: the answer it got (its value rides in its member); then the instance's
    // sums, the newest time and the last answer.
    expect(await redis.hlen(keys.state)).toBe(PREDICT_BOUNDS.maxPoints + 3);
    expect(await redis.pttl(keys.points)).toBeGreaterThan(6 * 3_600_000);
  });

  it('a flood of made-up instance ids on one target is one bounded set, not a key per id', async () => {
    const prefix = uniquePrefix('peq');
    prefixes.push(prefix);
    const store = new RedisPredictStore(redis);
    const keys = { points: `${prefix}:p`, state: `${prefix}:v` };
    const list: PredictVote[] = Array.from({ length: 2000 }, (_, i) => ({
      keys, eventId: `e${i}`, time: 1_700_000_000_000 + i, value: 100, limit: 512,
      withinMs: 1_800_000, overMs: 900_000, minSamples: 10, instance: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    }));
    for (let i = 0; i < list.length; i += 500) await store.predict(list.slice(i, i + 500));
    expect(await redis.zcard(keys.points)).toBe(PREDICT_BOUNDS.maxPoints);
    // An answer per kept sample, the sums of each instance that has one, the newest time, the last answer.
    expect(await redis.hlen(keys.state)).toBe(2 * PREDICT_BOUNDS.maxPoints + 2);
    let cursor = '0';
    const found: string[] = [];
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    expect(found.sort()).toEqual([keys.points, keys.state].sort());
  });

  it('ids the packed member must not confuse (a NUL, a shorter id, a retry at another value) agree with memory', async () => {
    const prefix = uniquePrefix('peq');
    prefixes.push(prefix);
    const store = new RedisPredictStore(redis);
    const memory = new MemoryPredictStore();
    const keys = { points: `${prefix}:p`, state: `${prefix}:v` };
    const t0 = 1_700_000_000_000;
    // Same times on purpose: ties are ordered by the id, and 'e1' must sort before 'e1!' and 'e10'.
    const base = (i: number, eventId: string, instance: string, value: number): PredictVote => ({
      keys, eventId, time: t0 + Math.floor(i / 3) * 20_000, value, limit: 512,
      withinMs: 3_600_000, overMs: 600_000, minSamples: 3, instance,
    });
    const list: PredictVote[] = [];
    for (let i = 0; i < 120; i++) {
      const instance = i % 4 === 0 ? 'x\0y' : 'x';
      list.push(base(i, `e${i % 40}${['', '!', '0'][i % 3]}`, instance, 100 + i * 0.7));
      if (i % 9 === 0) list.push(base(i, `e${i % 40}`, instance, 999)); // a retry (or a reused id) at another value
    }
    const fromRedis = await store.predict(list);
    const fromMemory = await memory.predict(list);
    expect(fromRedis).toEqual(fromMemory);
    expect(fromRedis.filter((r) => r.status !== 'few').length).toBeGreaterThan(50);
  });

  it('through the body script, several samples of a target in one call (its state hash written once at the end), on random series', async () => {
    await fc.assert(fc.asyncProperty(runs, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), async ({ withinMs, overMs, minSamples, limit, steps }, cuts) => {
      const prefix = uniquePrefix('peqb');
      prefixes.push(prefix);
      const memory = new MemoryPredictStore();
      const own = new RedisPredictStore(redis);
      let t = 1_700_000_000_000;
      const list = (tree: string): PredictVote[] => {
        t = 1_700_000_000_000;
        return steps.map((s) => {
          t += s.dt;
          const k = `${prefix}:${tree}:${s.target}`;
          return {
            keys: { points: `${k}:p`, state: `${k}:v` },
            // Few ids: retries of samples of earlier calls and of this one.
            eventId: `e${s.id % 25}`, time: t, value: s.value, limit, withinMs, overMs, minSamples, instance: s.instance,
          };
        });
      };
      const votes = list('body');
      // The samples in calls of random sizes: both targets, retries and slides within one call.
      const fromBody: BodyPredictAnswer[] = [];
      let at = 0;
      for (let c = 0; at < votes.length; c++) {
        const n = cuts[c % cuts.length]!;
        const slice = votes.slice(at, at + n);
        at += n;
        const reply = await callBodyScript(redis, encodeBody(`${prefix}:frames`, '', t, false, slice.map(predictPart)));
        fromBody.push(...reply.slice(1).map(bodyPredictAnswer));
      }
      expect(fromBody).toEqual((await memory.predict(votes)).map(asBodyAnswer));
      // And each target's state hash and set hold what the standalone script leaves.
      const alone = list('own');
      await own.predict(alone);
      for (const target of ['a', 'b']) {
        for (const key of ['p', 'v']) {
          const a = `${prefix}:own:${target}:${key}`;
          const b = `${prefix}:body:${target}:${key}`;
          if (key === 'p') expect(await redis.zrangeBuffer(b, '0', '-1', 'WITHSCORES')).toEqual(await redis.zrangeBuffer(a, '0', '-1', 'WITHSCORES'));
          else expect(await redis.hgetallBuffer(b)).toEqual(await redis.hgetallBuffer(a));
          const ttl = await redis.pttl(b);
          if (await redis.exists(b)) expect(ttl).toBeGreaterThan(0);
        }
      }
    }), { numRuns: 60 });
  });

  it('through the body script past the point cap, in calls long enough that a call takes its set\'s front in several slices and its own queued samples', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 400 }), fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 30 }),
      async (callSize, odd, overMin) => {
        const prefix = uniquePrefix('peqc');
        prefixes.push(prefix);
        const memory = new MemoryPredictStore();
        const own = new RedisPredictStore(redis);
        const n = PREDICT_BOUNDS.maxPoints * 2 + 50;
        const oddOnes = new Set(odd);
        // One sample a second, two instances; a few go back in time (the part then asks Redis), a
        // few are retries; a window from 1 to 31 minutes: the cap, the window or both bound the set.
        const list = (tree: string): PredictVote[] => Array.from({ length: n }, (_, i) => {
          const k = `${prefix}:${tree}`;
          const back = oddOnes.has(i);
          return {
            keys: { points: `${k}:p`, state: `${k}:v` }, eventId: `e${back && i % 2 === 0 ? i - 40 : i}`,
            time: 1_700_000_000_000 + (back ? i - 90 : i) * 1000, value: 100 + i * 0.01 + (i % 7) * 0.3, limit: 512,
            withinMs: 3_600_000, overMs: (overMin + 1) * 60_000, minSamples: 10, instance: i % 3 === 0 ? 'a' : 'b',
          };
        });
        const votes = list('body');
        const fromBody: BodyPredictAnswer[] = [];
        for (let at = 0; at < votes.length; at += callSize) {
          const reply = await callBodyScript(redis, encodeBody(`${prefix}:frames`, '', 0, false, votes.slice(at, at + callSize).map(predictPart)));
          fromBody.push(...reply.slice(1).map(bodyPredictAnswer));
        }
        expect(fromBody).toEqual((await memory.predict(votes)).map(asBodyAnswer));
        await own.predict(list('own'));
        expect(await redis.zrangeBuffer(`${prefix}:body:p`, '0', '-1', 'WITHSCORES')).toEqual(await redis.zrangeBuffer(`${prefix}:own:p`, '0', '-1', 'WITHSCORES'));
        expect(await redis.hgetallBuffer(`${prefix}:body:v`)).toEqual(await redis.hgetallBuffer(`${prefix}:own:v`));
      },
    ), { numRuns: 25 });
  });
});
