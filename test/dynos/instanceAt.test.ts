import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { instanceAt, releaseAt } from '../../src/dynos/instanceAt.js';
import { MemoryLifeStore } from '../../src/dynos/lifeMemory.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { lifeBatchOfEvents } from '../../src/dynos/DynoObserver.js';
import type { LifeBatch } from '../../src/dynos/instanceLife.js';
import { redisKeys } from '../../src/keys.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { eventsOf, UUID_A, UUID_B } from './events.js';

const redis = testRedis();
const prefix = uniquePrefix('life');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const PREBOOT = readFileSync(new URL('../fixtures/preboot-lines.txt', import.meta.url), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const at = (iso: string) => Date.parse(`2024-11-14T${iso}Z`);

/** The life state after the lines up to (not including) the one at `upTo`, as the stores keep it. */
async function lifeAfter(lines: readonly string[], store: MemoryLifeStore | RedisLifeStore, app: string) {
  for (const [a, batch] of lifeBatchOfEvents(eventsOf(lines, app))) await store.write(a, batch);
  return store.read(app, ['web.1']);
}

describe('which web.1 a line is from (the preboot fixture)', () => {
  it('before the deploy one instance runs: an R14 is its', async () => {
    const life = await lifeAfter(PREBOOT.slice(0, 1), new MemoryLifeStore(), 'a');
    expect(instanceAt(life.dynos.get('web.1')!, at('09:00:30'))).toEqual({ instance: UUID_A, start: at('09:00:00') });
  });

  it('in the overlap both run: the R14 is the older one\'s; its start is the new process\'s (shared grace)', async () => {
    const life = await lifeAfter(PREBOOT.slice(0, 8), new MemoryLifeStore(), 'a');
    const d = life.dynos.get('web.1')!;
    expect(instanceAt(d, at('09:04:10'))).toEqual({ instance: UUID_A, start: at('09:03:30') });
    // A sample names its instance: the new one started with its `Starting process` line.
    expect(instanceAt(d, at('09:04:00'), UUID_B)).toEqual({ instance: UUID_B, start: at('09:02:00') });
    expect(instanceAt(d, at('09:04:00'), UUID_A)).toEqual({ instance: UUID_A, start: at('09:00:00') });
    expect(releaseAt(life, at('09:04:10'))).toBe(at('09:01:00'));
    expect(releaseAt(life, at('09:00:59'))).toBeUndefined();
  });

  it('once the old one has stopped sampling, only the new one runs: an R14 is its', async () => {
    const life = await lifeAfter(PREBOOT, new MemoryLifeStore(), 'a');
    expect(instanceAt(life.dynos.get('web.1')!, at('09:06:30')).instance).toBe(UUID_B);
  });

  it('without runtime metrics no instance is known: the stop is by name, the start from the start lines', async () => {
    const lines = PREBOOT.filter((l) => !l.includes('source=web.1'));
    const life = await lifeAfter(lines, new MemoryLifeStore(), 'a');
    expect(instanceAt(life.dynos.get('web.1')!, at('09:04:10'))).toEqual({ start: at('09:03:30') });
  });

  it('Redis and memory keep the same state for the fixture, however it is cut into deliveries', async () => {
    const memory = await lifeAfter(PREBOOT, new MemoryLifeStore(), 'a');
    const store = new RedisLifeStore(redis, redisKeys(prefix));
    for (const l of PREBOOT) await lifeAfter([l], store, 'cut');
    expect(await store.read('cut', ['web.1'])).toEqual(memory);
    // A retried delivery changes nothing.
    await lifeAfter(PREBOOT, store, 'cut');
    expect(await store.read('cut', ['web.1'])).toEqual(memory);
  });
});

const UUIDS = [UUID_A, UUID_B, '11111111-2222-3333-4444-555555555555', 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', '0f0f0f0f-0000-1111-2222-333333333333', 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
const batch = fc.record({
  releases: fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 4 }),
  starts: fc.array(fc.tuple(fc.constantFrom('web.1', 'web.2', 'worker.1'), fc.integer({ min: 0, max: 50 })), { maxLength: 6 }),
  samples: fc.array(fc.tuple(fc.constantFrom('web.1', 'web.2', 'worker.1'), fc.constantFrom(...UUIDS), fc.integer({ min: 0, max: 50 })), { maxLength: 12 }),
});

describe('life store: the Lua script and its in-memory mirror agree', () => {
  it('on random batches (bounds reached: more starts and instances than kept)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 8 }), async (batches) => {
      const keys = redisKeys(uniquePrefix(`${prefix}:eq`));
      const r = new RedisLifeStore(redis, keys);
      const m = new MemoryLifeStore();
      const T = 1_731_574_800_000;
      for (const b of batches) {
        const shifted: LifeBatch = {
          releases: b.releases.map((x) => T + x * 1000),
          starts: b.starts.map(([d, x]) => [d, T + x * 1000] as const),
          samples: b.samples.map(([d, id, x]) => [d, id, T + x * 1000] as const),
        };
        await r.write('app', shifted);
        await m.write('app', shifted);
      }
      const dynos = ['web.1', 'web.2', 'worker.1', 'web.9'];
      expect(await r.read('app', dynos)).toEqual(await m.read('app', dynos));
      await redis.del(keys.dynoLife('app').life, keys.dynoLife('app').index);
    }), { numRuns: 40 });
  });
});
