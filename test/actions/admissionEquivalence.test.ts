import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { admitFiring } from '../../src/actions/scripts/admitFiring.js';
import { MemoryAdmission } from '../../src/actions/admitFiringMemory.js';
import type { Limits } from '../../src/rules/RuleSet.js';

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

/** Random firings of two apps and three targets: repeated ids (retried submits), out-of-order times, small limits. */
const runs = fc.record({
  stormMax: fc.integer({ min: 1, max: 6 }),
  // At least 10 s: the script also PEXPIREs its sets by `within` in real time (garbage collection
  // the mirror leaves out), and a run must finish well inside it for the two to be comparable.
  stormWithin: fc.integer({ min: 10_000, max: 60_000 }),
  flapMax: fc.integer({ min: 1, max: 4 }),
  flapWithin: fc.integer({ min: 10_000, max: 120_000 }),
  steps: fc.array(fc.record({
    id: fc.integer({ min: 0, max: 30 }),
    dt: fc.integer({ min: -5_000, max: 20_000 }),
    app: fc.constantFrom('a', 'b'),
    target: fc.constantFrom('web.1', 'web.2', 'worker.1'),
  }), { minLength: 1, maxLength: 50 }),
});

describe('admission: the Lua script and its in-memory mirror agree', () => {
  it('on random firing sequences', async () => {
    const modes: string[] = [];
    await fc.assert(fc.asyncProperty(runs, async ({ stormMax, stormWithin, flapMax, flapWithin, steps }) => {
      const prefix = uniquePrefix('admit-eq');
      prefixes.push(prefix);
      const limits: Limits = { perApp: { maxFirings: stormMax, withinMs: stormWithin }, perProcessType: { concurrency: 1 }, flapping: { maxFirings: flapMax, withinMs: flapWithin } };
      const memory = new MemoryAdmission();
      let t = 1_700_000_000_000;
      const fromRedis: string[] = [];
      const fromMemory: string[] = [];
      for (const s of steps) {
        t += s.dt;
        // The firing id carries its app and target, as firingId() does.
        const id = `f${s.id}-${s.app}-${s.target}`;
        // No history record (admitFiring records only with a record argument); its keys are still named.
        const keys = { storm: `${prefix}:storm:${s.app}`, flapping: `${prefix}:flap:${s.app}:${s.target}`, admission: `${prefix}:admit:${id}`, spell: `${prefix}:sp`, history: `${prefix}:h`, stats: `${prefix}:st` };
        fromRedis.push(await admitFiring(redis, keys, id, t, limits));
        fromMemory.push(memory.admit(keys, id, t, limits));
      }
      expect(fromMemory).toEqual(fromRedis);
      modes.push(...fromRedis);
    }), { numRuns: 60 });
    // The runs are not all trivially "execute".
    expect(modes).toContain('held');
    expect(modes).toContain('flapping');
  });

  it('holds and leaves alone as the limits say (both agree on a known sequence)', async () => {
    const prefix = uniquePrefix('admit-known');
    prefixes.push(prefix);
    const limits: Limits = { perApp: { maxFirings: 3, withinMs: 60_000 }, perProcessType: { concurrency: 1 }, flapping: { maxFirings: 2, withinMs: 600_000 } };
    const memory = new MemoryAdmission();
    const seq: [string, number][] = [['web.1', 0], ['web.2', 1000], ['web.1', 2000], ['web.1', 3000], ['web.3', 4000], ['web.4', 70_000]];
    const got: [string, string][] = [];
    for (const [i, [target, at]] of seq.entries()) {
      const keys = { storm: `${prefix}:s`, flapping: `${prefix}:f:${target}`, admission: `${prefix}:a:${i}`, spell: `${prefix}:sp`, history: `${prefix}:h`, stats: `${prefix}:st` };
      const r = await admitFiring(redis, keys, `id${i}`, 1_700_000_000_000 + at, limits);
      expect(memory.admit(keys, `id${i}`, 1_700_000_000_000 + at, limits)).toBe(r);
      got.push([target, r]);
    }
    expect(got).toEqual([['web.1', 'execute'], ['web.2', 'execute'], ['web.1', 'execute'], ['web.1', 'flapping'], ['web.3', 'held'], ['web.4', 'execute']]);
  });
});
