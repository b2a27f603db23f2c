import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { redisKeys } from '../../src/keys.js';
import { DYNO_BOUNDS } from '../../src/dynos/bounds.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import type { DynoBatch, LifecycleKind } from '../../src/dynos/DynoRecord.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const redis = testRedis();
const prefixes: string[] = [];
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); redis.disconnect(); });

/** Small bounds, so random batches cross every tier and eviction. */
const bounds = { ...DYNO_BOUNDS, maxInstances: 3, fineSlots: 5, coarseStepMinutes: 3, coarseSlots: 4, retentionMs: 40 * 60_000, maxEvents: 6, maxMb: 1000 };
const uuids = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c', '00000000-0000-4000-8000-00000000000d', '00000000-0000-4000-8000-00000000000e'];
const T0 = 1_700_000_000_000;

const batch = fc.record({
  samples: fc.array(fc.record({
    u: fc.integer({ min: 0, max: 4 }), t: fc.integer({ min: 0, max: 60 * 60_000 }), mb: fc.double({ min: 0, max: 1500, noNaN: true }),
    q: fc.option(fc.constantFrom(512, 1024), { nil: undefined }), sw: fc.option(fc.double({ min: 0, max: 50, noNaN: true }), { nil: undefined }),
  }), { maxLength: 12 }),
  events: fc.array(fc.record({ kind: fc.constantFrom<LifecycleKind>('start', 'crash', 'cycling', 'remediation'), d: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 0, max: 60 * 60_000 }) }), { maxLength: 5 }),
});

type RandomBatch = typeof batch extends fc.Arbitrary<infer X> ? X : never;

function toBatch(b: RandomBatch): DynoBatch {
  return {
    samples: b.samples.map((s) => ({ dyno: `web.${(s.u % 2) + 1}`, instance: uuids[s.u]!, at: T0 + s.t, valueMb: s.mb, limitMb: s.q, swapMb: s.sw })),
    events: b.events.map((e) => ({ kind: e.kind, dyno: `web.${e.d}`, at: T0 + e.t, detail: e.kind === 'remediation' ? 'r/redis-stop-key' : '' })),
  };
}

describe('dyno store: the Lua script and its in-memory mirror agree', () => {
  it('on random sequences of batches (retries included)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 7 }), async (batches, retryAt) => {
      const prefix = uniquePrefix('dyneq');
      prefixes.push(prefix);
      const r = new RedisDynoStore(redis, redisKeys(prefix), bounds);
      const m = new MemoryDynoStore(bounds);
      const list = batches.map(toBatch);
      // One batch written twice (a retry) must change nothing in either.
      if (retryAt < list.length) list.splice(retryAt + 1, 0, list[retryAt]!);
      for (const b of list) {
        await r.write('app', b);
        await m.write('app', b);
      }
      expect(await r.read('app')).toEqual(await m.read('app'));
    }), { numRuns: 60 });
  });
});
