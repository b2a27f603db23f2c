import { afterAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/keys.js';
import { DYNO_BOUNDS } from '../../src/dynos/bounds.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import type { MemorySample } from '../../src/dynos/DynoRecord.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/** The README's bound on Redis memory per app, measured on real Redis. */
const redis = testRedis();
const prefix = uniquePrefix('dynbound');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2024-11-01T00:00:00Z');
const uuid = (dyno: number, life: number) => `00000000-0000-4000-8000-${String(dyno).padStart(4, '0')}${String(life).padStart(8, '0')}`;

async function memoryOf(match: string): Promise<{ bytes: number; keys: number }> {
  let cursor = '0';
  let bytes = 0;
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const k of found) {
      bytes += (await redis.memory('USAGE', k, 'SAMPLES', '0')) ?? 0;
      keys++;
    }
  } while (cursor !== '0');
  return { bytes, keys };
}

describe('memory trends: Redis memory per app is bounded', () => {
  it('two weeks of 20-second samples for 50 dynos, cycled daily, stay under 4 MiB', async () => {
    const store = new RedisDynoStore(redis, redisKeys(prefix));
    // Each dyno is cycled every 24 h at its own hour (as Heroku staggers it) and leaks 20 MB/h
    // from 150 MB; one sample per dyno every 20 s, written an hour at a time.
    for (let h = 0; h < 14 * 24; h++) {
      const samples: MemorySample[] = [];
      for (let d = 0; d < 50; d++) {
        for (let s = 0; s < 180; s++) {
          const at = T0 + h * HOUR + s * 20_000;
          const life = Math.floor((at - T0 + (d % 24) * HOUR) / DAY);
          const age = (at - T0 + (d % 24) * HOUR) % DAY;
          samples.push({ dyno: `web.${d + 1}`, instance: uuid(d, life), at, valueMb: 150 + (20 * age) / HOUR, limitMb: 1024, swapMb: 0 });
        }
      }
      await store.write('big-app', { samples, events: [] });
    }
    const { bytes, keys } = await memoryOf(`${prefix}:dyn-*`);
    const instances = await redis.zcard(redisKeys(prefix).dynos('big-app').instances);
    // 50 dynos × 15 lives (cycled daily, staggered), each one point a minute.
    expect(instances).toBeGreaterThanOrEqual(700);
    expect(instances).toBeLessThanOrEqual(800);
    expect(keys).toBe(instances + 2);
    console.log(`two weeks, 50 dynos: ${instances} instances, ${keys} keys, ${(bytes / 2 ** 20).toFixed(2)} MiB`);
    expect(bytes).toBeLessThan(4 * 2 ** 20);
    // The report reads it back: each instance one point a minute of its life.
    const snap = await store.read('big-app');
    const full = snap.instances.filter((i) => i.lastAt - i.firstAt > 23 * HOUR);
    expect(full.length).toBeGreaterThan(600);
    for (const i of full) expect(i.points.length).toBeGreaterThanOrEqual(23 * 60);
  }, 300_000);

  it('holds at most maxInstances instances, evicting the least recently sampled', async () => {
    const store = new RedisDynoStore(redis, redisKeys(prefix));
    const n = DYNO_BOUNDS.maxInstances + 150;
    const samples: MemorySample[] = [];
    for (let i = 0; i < n; i++) samples.push({ dyno: `worker.${(i % 9) + 1}`, instance: uuid(9000 + (i % 10), i), at: T0 + i * 1000, valueMb: 100 });
    for (let i = 0; i < n; i += 200) await store.write('churn-app', { samples: samples.slice(i, i + 200), events: [] });
    const k = redisKeys(prefix).dynos('churn-app');
    expect(await redis.zcard(k.instances)).toBe(DYNO_BOUNDS.maxInstances);
    expect(await redis.hlen(k.meta)).toBe(DYNO_BOUNDS.maxInstances);
    expect((await memoryOf(`${prefix}:dyn-mem:*churn-app*`)).keys).toBe(DYNO_BOUNDS.maxInstances);
    const snap = await store.read('churn-app');
    // The oldest 150 went.
    expect(Math.min(...snap.instances.map((i) => i.firstAt))).toBe(T0 + 150 * 1000);
  });

  it('drops instances and events older than the retention behind the newest', async () => {
    const store = new RedisDynoStore(redis, redisKeys(prefix));
    const old = { dyno: 'web.1', instance: uuid(1, 1), at: T0, valueMb: 100 };
    await store.write('old-app', { samples: [old], events: [{ kind: 'crash', dyno: 'web.1', at: T0, detail: 'up' }] });
    const now = T0 + DYNO_BOUNDS.retentionMs + HOUR;
    await store.write('old-app', { samples: [{ ...old, instance: uuid(1, 2), at: now }], events: [{ kind: 'cycling', dyno: 'web.1', at: now, detail: '' }] });
    const snap = await store.read('old-app');
    expect(snap.instances.map((i) => i.instance)).toEqual([uuid(1, 2)]);
    expect(snap.events.map((e) => e.kind)).toEqual(['cycling']);
  });
});
