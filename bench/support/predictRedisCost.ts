/**
 * Redis time per prediction: one target's series warmed to `points` samples of instance a (20 s
 * apart, `over` = points × 20 s, so the window holds exactly that many), with `instances` − 1
 * more instances reporting over the warm-up's last third (a preboot overlap, as in production);
 * then `samples` steps of 20 s, each one EVALSHA of the predict script per instance. Prints the
 * median and spread of each call's own time (INFO commandstats read after each call), their mean,
 * and Redis's main-thread CPU per call over as many more steps. Run against a private redis-server
 * (CONFIG RESETSTAT is called):
 *   node --import tsx bench/support/predictRedisCost.ts [port] [points=135] [instances=2] [samples=200]
 */
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/keys.js';
import { RedisPredictStore, type PredictVote } from '../../src/rules/predictScript.js';

const port = Number(process.argv[2] ?? 6391);
const points = Number(process.argv[3] ?? 135);
const instances = Number(process.argv[4] ?? 2);
const n = Number(process.argv[5] ?? 200);
const redis = new Redis({ port, lazyConnect: false });
const keys = redisKeys(`bench-pred-${process.pid}:`).predict('web-memory-predict', 'app', 'web.1');
const store = new RedisPredictStore(redis);
const t0 = 1_700_000_000_000;
const names = Array.from({ length: instances }, (_, i) => String.fromCharCode(97 + i));
const vote = (i: number, instance: string): PredictVote => ({
  keys, eventId: `e${instance}${i}`, time: t0 + i * 20_000, value: 200 + i * 0.5 + (i % 5) * 0.1, limit: 512,
  withinMs: 1_800_000, overMs: points * 20_000, minSamples: 10, instance,
});
const step = (i: number, warm: boolean) => names.filter((_x, k) => k === 0 || !warm || i >= Math.floor((points * 2) / 3)).map((x) => vote(i, x));
for (let i = 0; i < points; i++) await store.predict(step(i, true));
// Redis's own CPU (main thread), less swayed by a loaded machine than the wall-clock usec.
const cpu = async (): Promise<number> => {
  const info = String(await redis.info('cpu'));
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return (get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread')) * 1e6;
};
await redis.config('RESETSTAT');
// Each call's own time: the EVALSHA total of INFO commandstats read after every call (the INFO
// itself is not counted in it). SLOWLOG would log the script's inner calls too and slow it.
const evalshaUsec = async (): Promise<number> => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(String(await redis.info('commandstats')))?.[1] ?? 0);
const each: number[] = [];
let before = await evalshaUsec();
// One sample per round trip, as the drain's body script calls it.
for (let i = points; i < points + n; i++) {
  for (const v of step(i, false)) {
    await store.predict([v]);
    const after = await evalshaUsec();
    each.push(after - before);
    before = after;
  }
}
each.sort((a, b) => a - b);
// Then as many more steps without INFO between calls, for Redis's main-thread CPU per call.
const cpu0 = await cpu();
for (let i = points + n; i < points + 2 * n; i++) for (const v of step(i, false)) await store.predict([v]);
const cpuPerCall = (await cpu() - cpu0) / each.length;
const q = (p: number) => each[Math.min(each.length - 1, Math.floor(p * each.length))];
const mean = each.reduce((a, b) => a + b, 0) / each.length;
const held = await redis.zcard(keys.points);
const memory = (await Promise.all(Object.values(keys).map((k) => redis.memory('USAGE', k) as Promise<number | null>))).reduce<number>((a, b) => a + (b ?? 0), 0);
console.log(`predict, ${points}-point window, ${instances} instance(s), ${each.length} samples: median ${q(0.5)} us of Redis per sample (p10 ${q(0.1)}, p90 ${q(0.9)}, max ${each[each.length - 1]}; commandstats after each call), mean ${mean.toFixed(1)}, ${cpuPerCall.toFixed(1)} us of Redis main-thread CPU per call (a second pass); the target holds ${held} points, ${memory} bytes (MEMORY USAGE of its keys)`);
await redis.del(...Object.values(keys));
redis.disconnect();
