import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import {
  PREDICT_HELPERS_LUA, PREDICT_LAST_FIELD, RedisPredictStore, parsePredictLast, parsePredictReply, predictPart,
  type PredictResult, type PredictVote,
} from '../../src/rules/predictScript.js';
import { callBodyScript, encodeBody } from '../../src/server/bodyScript.js';
import { MemoryPredictStore } from '../../src/rules/predictMemory.js';
import { asBodyAnswer, bodyPredictAnswer, type BodyPredictAnswer } from '../support/predictAnswers.js';

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

/** Each double (packed, in ARGV) through the script's dbl, as a reply's m, e pairs. */
const DBL_LUA = `${PREDICT_HELPERS_LUA}
local out = {}
for i = 1, #ARGV do
  local m, e = dbl((struct.unpack('<d', ARGV[i])))
  out[#out + 1] = m
  out[#out + 1] = e
end
return out`;

/**
 * The state hash rewritten as the script before packed answers wrote it: each answer the JSON of
 * its reply's text (%d and %.17g, '' for none) and the last answer JSON [instance, time, answer].
 */
const TO_OLD_LUA = `${PREDICT_HELPERS_LUA}
local function old(v)
  local code, n, slope, eta, fitted, rest = struct.unpack('<Bdddd', v)
  local limit = string.sub(v, rest)
  if code == 1 then return cjson.encode({'few', int(n), '', '', '', limit}) end
  if code == 2 then return cjson.encode({'below', int(n), f(slope), '', f(fitted), limit}) end
  return cjson.encode({STATUS[code], int(n), f(slope), int(eta), f(fitted), limit})
end
local all = redis.call('HGETALL', KEYS[1])
local changed = 0
for i = 1, #all, 2 do
  local field, v = all[i], all[i + 1]
  if string.byte(field) ~= 0 then
    redis.call('HSET', KEYS[1], field, old(v))
    changed = changed + 1
  elseif field == '\\0\\0' then
    local a = string.find(v, '\\0', 2, true)
    local b = string.find(v, '\\0', a + 1, true)
    local last = '[' .. cjson.encode(string.sub(v, 2, a - 1)) .. ',' .. cjson.encode(string.sub(v, a + 1, b - 1)) .. ',' .. old(string.sub(v, b + 1)) .. ']'
    redis.call('HSET', KEYS[1], field, last)
  end
end
return changed`;

describe('predict: the reply\'s numbers and the stored answers', () => {
  it('a reply\'s double (m, e, or text) reads back as the very double, any double', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.double(), { minLength: 1, maxLength: 200 }), async (xs) => {
      const args = xs.map((x) => {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(x);
        return b;
      });
      const reply = (await redis.eval(DBL_LUA, 0, ...args)) as (string | number)[];
      for (let i = 0; i < xs.length; i++) {
        const m = reply[2 * i]!;
        const e = reply[2 * i + 1]!;
        const r = parsePredictReply(['below', 10, '', '512', m, e, m, e]);
        if (r.status === 'few') throw new Error('few');
        expect(r.slope).toBe(xs[i]);
        expect(r.fitted).toBe(xs[i]);
      }
    }), { numRuns: 40 });
    // The edges by name: signed zeros, the extremes, subnormals, not finite.
    const edges = [0, -0, Number.MIN_VALUE, -Number.MIN_VALUE, 2 ** -1022, 2 ** -1000, 2 ** -999, Number.MAX_VALUE, -Number.MAX_VALUE, Infinity, -Infinity, NaN, 1, -1, 0.1, 2 ** 53, 2 ** 53 + 2,
      1 - 2 ** -53, -(1 - 2 ** -53), 2 - 2 ** -52, 1 - 48 * 2 ** -53, 1 - 64 * 2 ** -53, 1 - 65 * 2 ** -53, 2 ** 53 - 1, 2 ** 53 - 64];
    const reply = (await redis.eval(DBL_LUA, 0, ...edges.map((x) => { const b = Buffer.alloc(8); b.writeDoubleLE(x); return b; }))) as (string | number)[];
    edges.forEach((x, i) => {
      const r = parsePredictReply(['reaches', 10, 0, '512', reply[2 * i]!, reply[2 * i + 1]!, 1, 0]);
      expect(r.status === 'reaches' && r.slope).toBe(x);
    });
  });

  it('state written by the previous format (JSON answers, JSON last answer) is read: retries get their first answers and the series goes on as memory\'s', async () => {
    const prefix = uniquePrefix('prold');
    prefixes.push(prefix);
    const own = new RedisPredictStore(redis);
    const t0 = 1_700_000_000_000;
    // Two instances, a rising noisy series, a flat stretch (below without an eta), a 15-minute window.
    const vote = (tree: string, i: number): PredictVote => ({
      keys: { points: `${prefix}:${tree}:p`, state: `${prefix}:${tree}:v` },
      eventId: `e${i}`, time: t0 + i * 20_000, value: i < 30 ? 100 : 100 + i * 0.37 + (i % 5) * 0.11, limit: i % 2 ? 512 : 160.25,
      withinMs: 1_800_000, overMs: 900_000, minSamples: 5, instance: i % 4 === 0 ? 'y' : 'x',
    });
    const first = Array.from({ length: 70 }, (_, i) => i);
    const later = Array.from({ length: 50 }, (_, i) => 70 + i);
    const memory = new MemoryPredictStore();
    const expected = await memory.predict([...first, ...later].map((i) => vote('m', i)));
    for (const tree of ['own', 'body']) await own.predict(first.map((i) => vote(tree, i)));
    const lastBefore = parsePredictLast((await redis.hgetBuffer(`${prefix}:own:v`, PREDICT_LAST_FIELD))!);
    for (const tree of ['own', 'body']) expect(await redis.eval(TO_OLD_LUA, 1, `${prefix}:${tree}:v`)).toBeGreaterThan(40);
    const oldLast = (await redis.hget(`${prefix}:own:v`, PREDICT_LAST_FIELD))!;
    expect(oldLast.startsWith('[')).toBe(true);
    // mallet explain reads the old last answer as it read the new one.
    expect(parsePredictLast((await redis.hgetBuffer(`${prefix}:own:v`, PREDICT_LAST_FIELD))!)).toEqual(lastBefore);
    expect(lastBefore.answer.status).not.toBe('few');

    // Retries of the samples still held (the window's last 45): their first answers, from the old JSON.
    const retried = first.slice(-40);
    const want = retried.map((i) => expected[i]!);
    expect(await own.predict(retried.map((i) => vote('own', i)))).toEqual(want);
    const reply = await callBodyScript(redis, encodeBody(`${prefix}:frames`, '', t0, false, retried.map((i) => predictPart(vote('body', i)))));
    expect(reply.slice(1).map(bodyPredictAnswer)).toEqual(want.map(asBodyAnswer));
    expect(want.map((a) => a.status)).toContain('below');

    // The series goes on over the mixed hash (old answers sliding out, new ones packed), retries among them.
    const fromOwn: PredictResult[] = [];
    const fromBody: BodyPredictAnswer[] = [];
    for (let at = 0; at < later.length; at += 7) {
      const slice = later.slice(at, at + 7);
      fromOwn.push(...await own.predict(slice.map((i) => vote('own', i))));
      const r = await callBodyScript(redis, encodeBody(`${prefix}:frames`, '', t0, false, slice.map((i) => predictPart(vote('body', i)))));
      fromBody.push(...r.slice(1).map(bodyPredictAnswer));
    }
    expect(fromOwn).toEqual(later.map((i) => expected[i]!));
    expect(fromBody).toEqual(fromOwn.map(asBodyAnswer));
    expect(await redis.hgetallBuffer(`${prefix}:body:v`)).toEqual(await redis.hgetallBuffer(`${prefix}:own:v`));
    expect(fromOwn.map((a) => a.status)).toContain('reaches');
  });
});
