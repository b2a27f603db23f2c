/**
 * Redis time per prediction: a 135-point series of one instance (plus a second instance on the
 * same target, 45 points, as in a preboot overlap), then 200 more samples, each one EVALSHA of
 * the predict script; prints the script's `usec_per_call` from INFO commandstats. Run against a
 * private redis-server for exact counters (CONFIG RESETSTAT is called):
 *   node --import tsx bench/support/predictRedisCost.ts [port]
 */
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/keys.js';
import { RedisPredictStore, type PredictVote } from '../../src/rules/predictScript.js';

const port = Number(process.argv[2] ?? 6391);
const redis = new Redis({ port, lazyConnect: false });
const keys = redisKeys(`bench-pred-${process.pid}:`).predict('web-memory-predict', 'app', 'web.1');
const store = new RedisPredictStore(redis);
const t0 = 1_700_000_000_000;
const vote = (i: number, instance: string): PredictVote => ({
  keys, eventId: `e${instance}${i}`, time: t0 + i * 20_000, value: 200 + i * 0.5 + (i % 5) * 0.1, limit: 512,
  withinMs: 1_800_000, overMs: 45 * 60_000, minSamples: 10, instance,
});
// warm: 135 points of instance a within `over` (45 min of 20 s samples), 45 of b
for (let i = 0; i < 135; i++) await store.predict([vote(i, 'a'), ...(i >= 90 ? [vote(i, 'b')] : [])]);
// Redis's own CPU (main thread), less swayed by a loaded machine than the wall-clock usec.
const cpu = async (): Promise<number> => {
  const info = String(await redis.info('cpu'));
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread')) * 1e6;
};
await redis.config('RESETSTAT');
const n = 200;
const cpu0 = await cpu();
for (let i = 135; i < 135 + n; i++) await store.predict([vote(i, 'a')]);
const cpu1 = await cpu();
const stats = String(await redis.info('commandstats'));
const line = stats.split('\n').find((l) => l.startsWith('cmdstat_evalsha:'));
console.log(line?.trim());
const usec = Number(/usec_per_call=([\d.]+)/.exec(line ?? '')?.[1]);
console.log(`predict: ${usec} us of Redis per prediction (evalsha usec), ${((cpu1 - cpu0) / n).toFixed(1)} us of Redis main-thread CPU per round trip (${n} samples, series at 135 points of a + b)`);
await redis.del(keys.points, (keys as unknown as Record<string, string>).values ?? '', (keys as unknown as Record<string, string>).answers ?? '', keys.last);
redis.disconnect();
