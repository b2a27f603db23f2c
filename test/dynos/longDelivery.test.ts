import { afterAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/keys.js';
import { DYNO_BOUNDS } from '../../src/dynos/bounds.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { LIFE_BOUNDS, lifeBatchOf } from '../../src/dynos/instanceLife.js';
import type { LifecycleEvent, MemorySample } from '../../src/dynos/DynoRecord.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/**
 * One delivery as long as a syslog batch (4 096 lines), each line a lifecycle event or a sample
 * of an instance of its own: the dyno writes make one command of the whole delivery, longer than
 * Lua's unpack gives (~8 000 values), so they go out in slices (luaSlices.ts). Without that the
 * script failed ("too many results to unpack") and the whole batch with it.
 */
const redis = testRedis();
const prefix = uniquePrefix('longdel');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const N = 4096;
const T0 = Date.parse('2026-12-02T04:00:00Z');
const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const events: LifecycleEvent[] = Array.from({ length: N }, (_, i) => ({ kind: 'start', dyno: `web.${i + 1}`, at: T0 + i, detail: '' }));
const samples: MemorySample[] = Array.from({ length: N }, (_, i) => ({ dyno: `web.${i + 1}`, instance: uuid(i), at: T0 + i, valueMb: 100 + (i % 50), limitMb: 512 }));

describe('a delivery of 4 096 dyno lines of as many dynos', () => {
  it('trends: every event and the newest instances are stored, within the bounds', async () => {
    const keys = redisKeys(prefix);
    await new RedisDynoStore(redis, keys).write('app-long', { samples, events });
    const k = keys.dynos('app-long');
    expect(await redis.zcard(k.events)).toBe(N);
    expect(await redis.zcard(k.instances)).toBe(DYNO_BOUNDS.maxInstances);
    expect(await redis.hlen(k.meta)).toBe(DYNO_BOUNDS.maxInstances);
  });

  it('lifecycle: every dyno is heard of, then the index is cut to its bound', async () => {
    const keys = redisKeys(`${prefix}:life`);
    const store = new RedisLifeStore(redis, keys);
    await store.write('app-long', lifeBatchOf(samples, events));
    const k = keys.dynoLife('app-long');
    const kept = await redis.zrange(k.index, '0', '-1');
    expect(kept).toHaveLength(LIFE_BOUNDS.dynos);
    // The newest dynos are the ones kept past the bound.
    expect(kept).toContain(`web.${N}`);
    expect(await redis.hexists(k.life, `d:web.${N}`)).toBe(1);
  });
});
