import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { predictPart, RedisPredictStore, type PredictVote } from '../../src/rules/predictScript.js';
import { asBodyAnswer, bodyPredictAnswer, type BodyPredictAnswer } from '../support/predictAnswers.js';
import { callBodyScript, encodeBody } from '../../src/server/bodyScript.js';
import { MemoryPredictStore } from '../../src/rules/predictMemory.js';

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

/**
 * predictEquivalence's body-script property, shrunk (seed 27537786): an id stored in an earlier
 * call comes again at a later time, after another sample of its target in the same call. A
 * body script that takes "newer than the held newest time" as "never stored" and skips the id's
 * HGET counts it as new, where the standalone script and the memory mirror answer it as the
 * retry it is by id.
 */
describe('predict through the body script: an id seen before, at a later time', () => {
  it('answers as the standalone script and the memory mirror', async () => {
    const prefix = uniquePrefix('predict-reused-id');
    prefixes.push(prefix);
    const t0 = 1_700_000_000_000;
    const vote = (tree: string, id: string, time: number): PredictVote => ({
      keys: { points: `${prefix}:${tree}:p`, state: `${prefix}:${tree}:v` },
      eventId: id, time, value: 0, limit: 1, withinMs: 1000, overMs: 60_000, minSamples: 3, instance: 'y',
    });
    const steps = (tree: string) => [vote(tree, 'e20', t0), vote(tree, 'e0', t0), vote(tree, 'e20', t0 + 1)];
    const votes = steps('body');
    const fromBody: BodyPredictAnswer[] = [];
    // Calls [e20], [e0, e20 again later].
    for (const slice of [votes.slice(0, 1), votes.slice(1)]) {
      const reply = await callBodyScript(redis, encodeBody(`${prefix}:frames`, '', t0, false, slice.map(predictPart)));
      fromBody.push(...reply.slice(1).map(bodyPredictAnswer));
    }
    const fromMemory = await new MemoryPredictStore().predict(steps('memory'));
    const fromAlone = await new RedisPredictStore(redis).predict(steps('alone'));
    expect(fromAlone).toEqual(fromMemory);
    expect(fromBody).toEqual(fromMemory.map(asBodyAnswer));
    // The answers themselves, as stored for retries: the same state as the standalone script's.
    expect(await redis.hgetallBuffer(`${prefix}:body:v`)).toEqual(await redis.hgetallBuffer(`${prefix}:alone:v`));
  });
});
