import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { PREDICT_LUA, predictPart, parsePredictReply, type PredictVote } from '../../src/rules/predictScript.js';
import { MemoryPredictStore } from '../../src/rules/predictMemory.js';
import { PREDICT_BOUNDS } from '../../src/rules/predict.js';

/**
 * Bounded work per sample: the predict script run with a `redis.call` that counts the elements
 * of every reply it hands the script (points, fields), so what one sample reads is measured,
 * whatever the series' length. Before running sums it read the target's whole set (up to 360
 * points) on every sample.
 */
const COUNTING_LUA = `
local realCall = redis.call
local read = 0
local redis = { call = function(...)
  local r = realCall(...)
  if type(r) == 'table' then read = read + #r end
  return r
end }
local function predict(KEYS, ARGV)
${PREDICT_LUA}
end
local answer = predict(KEYS, ARGV)
return {read, answer}
`;

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => {
  redis = testRedis();
  redis.defineCommand('malletPredictCounting', { numberOfKeys: 2, lua: COUNTING_LUA });
});
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

type Counting = { malletPredictCounting(...args: (string | number)[]): Promise<[number, unknown]> };

async function run(points: number, instances: number, steps: number): Promise<{ reads: number[]; memory: MemoryPredictStore; agree: boolean }> {
  const prefix = uniquePrefix('pbound');
  prefixes.push(prefix);
  const keys = { points: `${prefix}:p`, state: `${prefix}:s` };
  const memory = new MemoryPredictStore();
  const reads: number[] = [];
  let agree = true;
  // `over` holds `points` samples of 20 s: the window is full for every measured step.
  for (let i = 0; i < points + steps; i++) {
    for (let k = 0; k < instances; k++) {
      const v: PredictVote = {
        keys, eventId: `e${i}`, time: 1_700_000_000_000 + i * 20_000 + k, value: 200 + i * 0.5 + (i % 5) * 0.1, limit: 512,
        withinMs: 1_800_000, overMs: points * 20_000, minSamples: 10, instance: `i${k}`,
      };
      const p = predictPart(v);
      const [n, reply] = await (redis as unknown as Counting).malletPredictCounting(...p.keys, ...p.args);
      if (JSON.stringify(parsePredictReply(reply)) !== JSON.stringify(memory.predictOne(v))) agree = false;
      if (i >= points) reads.push(n);
    }
  }
  return { reads, memory, agree };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('predict: bounded work per sample', () => {
  it('a sample reads a handful of elements whatever the series length; rebuilding the sums is rare', async () => {
    for (const [points, instances] of [[135, 1], [360, 1], [135, 3]] as const) {
      const steps = 150;
      const { reads, agree } = await run(points, instances, steps);
      expect(agree).toBe(true);
      // HMGET's 3 fields and the 0–2 points that slide out (or pass the cap).
      expect(median(reads)).toBeLessThanOrEqual(5);
      const heavy = reads.filter((r) => r > 8);
      // A rebuild reads the target's set once per `over` of an instance's series time (one per
      // instance over these steps at most, as they span less than two windows).
      expect(heavy.length).toBeLessThanOrEqual(instances * 2);
      for (const r of heavy) expect(r).toBeLessThanOrEqual(3 + PREDICT_BOUNDS.maxPoints + 1);
    }
  }, 120_000);

  it.each([
    ['a 15-minute window (under the cap)', 15 * 60_000],
    // 540 samples an instance in 3 h, 1 080 the target's: the 360-point cap drops the oldest.
    ['a 3-hour window (past the 360-point cap)', 3 * 3_600_000],
  ])('the running sums stay accurate over a long series, %s: rebuilt once per window, they match a fresh fit', (_name, overMs) => {
    // A day of 20 s samples, noisy and rising, two instances interleaved; after each sample the
    // answer (the script's, bit for bit: the equivalence tests) against a two-pass fit of the
    // instance's window computed afresh.
    const memory = new MemoryPredictStore();
    const keys = { points: 'acc:p', state: 'acc:s' };
    const window = new Map<string, { t: number; y: number }[]>();
    let worst = 0;
    let capped = 0;
    for (let i = 0; i < 4320; i++) {
      for (const inst of ['a', 'b']) {
        const t = 1_700_000_000_000 + i * 20_000 + (inst === 'b' ? 7_000 : 0);
        const y = 300 + i * 0.05 + Math.sin(i * 1.7 + (inst === 'b' ? 1 : 0)) * 3;
        const got = memory.predictOne({ keys, eventId: `e${i}`, time: t, value: y, limit: 1e6, withinMs: 1_800_000, overMs, minSamples: 10, instance: inst });
        const pts = [...(window.get(inst) ?? []), { t, y }];
        window.set(inst, pts);
        // The target's newest is this sample or the other instance's, so the window is by t.
        const newest = Math.max(t, ...[...window.values()].flat().map((p) => p.t));
        for (const [k, list] of window) window.set(k, list.filter((p) => p.t > newest - overMs));
        // Then the cap: the target's newest maxPoints samples, whichever instance they are of.
        const all = [...window.values()].flat().map((p) => p.t).sort((a, b) => a - b);
        if (all.length > PREDICT_BOUNDS.maxPoints) {
          const oldestKept = all[all.length - PREDICT_BOUNDS.maxPoints]!;
          for (const [k, list] of window) window.set(k, list.filter((p) => p.t >= oldestKept));
          capped++;
        }
        const own = window.get(inst)!;
        if (got.status === 'few') continue;
        expect(got.samples).toBe(own.length);
        const mx = own.reduce((a, p) => a + p.t, 0) / own.length;
        const my = own.reduce((a, p) => a + p.y, 0) / own.length;
        const sxy = own.reduce((a, p) => a + (p.t - mx) * (p.y - my), 0);
        const sxx = own.reduce((a, p) => a + (p.t - mx) ** 2, 0);
        const slope = (sxy / sxx) * 3_600_000;
        worst = Math.max(worst, Math.abs(got.slope - slope) / Math.abs(slope));
      }
    }
    expect(worst).toBeLessThan(1e-9);
    // Two instances' samples every 20 s: the target's set passes the cap once `over` holds 360 × 10 s.
    if (overMs > PREDICT_BOUNDS.maxPoints * 10_000) {
      // The cap was what bounded the series for most of the day, each instance near half of it.
      expect(capped).toBeGreaterThan(4320);
      expect(window.get('a')!.length + window.get('b')!.length).toBe(PREDICT_BOUNDS.maxPoints);
    } else {
      expect(capped).toBe(0);
    }
  });

  it('Redis memory per target stays bounded however long the series runs', async () => {
    const prefix = uniquePrefix('pbound');
    prefixes.push(prefix);
    const keys = { points: `${prefix}:p`, state: `${prefix}:s` };
    const sizes: number[] = [];
    // 1-second samples in a 6 h window: only the 360-point cap bounds the series.
    for (let i = 0; i < 1200; i++) {
      const v: PredictVote = { keys, eventId: `e${i}`, time: 1_700_000_000_000 + i * 1000, value: 100 + i * 0.01, limit: 512, withinMs: 1_800_000, overMs: 6 * 3_600_000, minSamples: 10, instance: 'a' };
      const p = predictPart(v);
      await (redis as unknown as Counting).malletPredictCounting(...p.keys, ...p.args);
      if (i === 400 || i === 1199) sizes.push((await redis.memory('USAGE', keys.points, 'SAMPLES', 0) as number) + (await redis.memory('USAGE', keys.state, 'SAMPLES', 0) as number));
    }
    expect(await redis.zcard(keys.points)).toBe(PREDICT_BOUNDS.maxPoints);
    // About the same size after 400 and 1 200 samples (allocator and hash-table slack), and under 128 KiB.
    expect(sizes[1]!).toBeLessThan(sizes[0]! * 1.1);
    expect(sizes[1]!).toBeLessThan(128 * 1024);
  }, 120_000);
});
