import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { LifecycleEvent, LifecycleKind, MemorySample } from '../../src/dynos/DynoRecord.js';
import { groupSamples, pushSampleGroups } from '../../src/dynos/DynoStore.js';
import { isEmptyBatch, lifeBatchOf } from '../../src/dynos/instanceLife.js';
import { lifeArgs, lifeArgsOf, RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { redisKeys } from '../../src/keys.js';

/**
 * The dyno observer's per-delivery write builds the script arguments straight from the samples
 * and events (pushSampleGroups, lifeArgsOf), without the groups and batches the stores' other
 * paths make. Those paths are the reference: the same arguments, for any records, few or many.
 */
const instances = ['4b88c98d-6243-4194-af49-8db9b53be371', 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c', 'web-5d9c8b7f6-q2x4z', 'd97d0ea7-cf3d-411b-b453-d2943a50b456'];
const dynos = ['web.1', 'web.2', 'worker.1', 'web-5d9c8b7f6-q2x4z'];
const T0 = Date.parse('2024-11-14T09:00:00Z');

const time = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 5 * 60_000 }).map((d) => T0 + d) },
  { weight: 3, arbitrary: fc.double({ min: 0, max: 3 * 60_000, noNaN: true }).map((d) => T0 + d) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, T0 - 0.5, T0 + 59_999.9) },
);
const mb = fc.oneof(fc.double({ min: 0, max: 2000, noNaN: true }), fc.constantFrom(Number.NaN, -3, 2e7, 512, 154.855));
const sample: fc.Arbitrary<MemorySample> = fc.record({
  dyno: fc.constantFrom(...dynos),
  instance: fc.constantFrom(...instances),
  at: time,
  valueMb: mb,
  limitMb: fc.option(mb, { nil: undefined }),
  swapMb: fc.option(mb, { nil: undefined }),
});
const kinds: LifecycleKind[] = ['start', 'up', 'crash', 'exit', 'cycling', 'restart', 'release', 'remediation', 'quota-restart'];
const event: fc.Arbitrary<LifecycleEvent> = fc.record({ kind: fc.constantFrom(...kinds), dyno: fc.constantFrom('', ...dynos), at: time, detail: fc.constantFrom('', 'v12', '137') });
// Up to 30 records, so that both sides of the pairwise bound (16) are reached.
const records = fc.record({ samples: fc.array(sample, { maxLength: 24 }), events: fc.array(event, { maxLength: 10 }) });

function groupedArgs(samples: readonly MemorySample[]): { instances: string[]; args: (string | number)[] } {
  const out = { instances: [] as string[], args: [] as (string | number)[] };
  for (const g of groupSamples(samples)) {
    out.instances.push(g.instance);
    out.args.push(g.instance, g.dyno, g.minutes.length);
    for (const m of g.minutes) out.args.push(m.at, m.valueMb, m.limitMb ?? '', m.swapMb ?? '');
  }
  return out;
}

describe('the observer write\'s arguments, built without intermediate records', () => {
  it('pushSampleGroups gives groupSamples\' groups and minutes as arguments', () => {
    fc.assert(fc.property(records, ({ samples }) => {
      const out = { instances: [] as string[], args: [] as (string | number)[] };
      pushSampleGroups(samples, out.instances, out.args);
      expect(out).toEqual(groupedArgs(samples));
    }), { numRuns: 2000 });
  });

  it('lifeArgsOf gives lifeArgs(lifeBatchOf(...))', () => {
    fc.assert(fc.property(records, ({ samples, events }) => {
      expect(lifeArgsOf(samples, events)).toEqual(lifeArgs(lifeBatchOf(samples, events)));
    }), { numRuns: 2000 });
  });

  it('recordsPart is write(lifeBatchOf(...))\'s call (the app\'s keys, lifeArgs), nothing when the batch is empty', () => {
    const keys = redisKeys('t');
    const store = new RedisLifeStore({ malletLife: async () => 1 } as unknown as Redis, keys);
    fc.assert(fc.property(fc.constantFrom('acme', 'other'), records, (app, { samples, events }) => {
      const batch = lifeBatchOf(samples, events);
      const k = keys.dynoLife(app);
      expect(store.recordsPart(app, samples, events)).toEqual(isEmptyBatch(batch) ? undefined : { name: 'life', keys: [k.life, k.index], args: lifeArgs(batch) });
    }), { numRuns: 1000 });
    expect(store.recordsPart('acme', [], [{ kind: 'crash', dyno: 'web.1', at: T0, detail: 'up' }])).toBeUndefined();
  });
});
