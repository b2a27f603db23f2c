import { writeFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { startService, type Service } from '../../src/server/service.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { eventually } from '../support/eventually.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';

/**
 * The action worker in its thread (what `mallet serve` runs): it reads the rules the service
 * loaded, including after a reload, and a graceful stop lets its running job finish.
 */
const PASSWORD = 'worker-thread-drain';
const redis = testRedis();
/** Another database of the test Redis, standing in for an app's own Redis (apps.X.redis_url). */
const appRedisUrl = `${testRedisUrl().replace(/\/\d*$/, '')}/5`;
const appRedis = new Redis(appRedisUrl);
let service: Service | undefined;
let queue: Queue | undefined;
let prefixes: string[] = [];

afterEach(async () => {
  await service?.close();
  await queue?.close();
  await cleanupPrefix(redis, ...prefixes);
  await cleanupPrefix(appRedis, ...prefixes);
  service = undefined;
  queue = undefined;
  prefixes = [];
});
afterAll(() => { redis.disconnect(); appRedis.disconnect(); });

function rules(prefix: string, o: { watch: boolean; appRedis?: string }): string {
  return `version: 1
apps:
  my-app:
${o.appRedis ? `    redis_url: ${o.appRedis}\n` : '    {}\n'}rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
        key: "${prefix}:puma::stop::{{target}}"
        ttl: 60s
        watch: ${o.watch}
`;
}

async function start(yaml: (prefix: string) => string): Promise<{ prefix: string; file: string; service: Service; queue: Queue }> {
  const prefix = uniquePrefix('wth');
  const queuePrefix = uniquePrefix('wthq');
  prefixes.push(prefix, queuePrefix);
  const { file, dir } = tempRulesFile(yaml(prefix));
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix,
    PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_RULES: file, LOG_LEVEL: 'silent',
  }, dir);
  service = await startService({ config, logger: pino({ level: 'silent' }), worker: 'thread' });
  queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
  return { prefix, file, service, queue };
}

const r14 = (dyno: string) => frame(drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)'));

describe('the action worker thread', () => {
  it('acts on the rules the service reloaded (an app Redis added after start)', async () => {
    const s = await start((p) => rules(p, { watch: false }));
    expect((await postDrain(s.service.url!, 'my-app', r14('web.1'), { password: PASSWORD })).status).toBe(204);
    await eventually('web.1 stop key in mallet\'s Redis', async () => (await redis.exists(`${s.prefix}:puma::stop::web.1`)) === 1);

    writeFileSync(s.file, rules(s.prefix, { watch: false, appRedis: appRedisUrl }));
    expect(await s.service.reloadRules()).toBe(true);
    expect((await postDrain(s.service.url!, 'my-app', r14('web.2'), { password: PASSWORD })).status).toBe(204);
    await eventually('web.2 stop key in the app Redis', async () => (await appRedis.exists(`${s.prefix}:puma::stop::web.2`)) === 1);
    expect(await redis.exists(`${s.prefix}:puma::stop::web.2`)).toBe(0);
  });

  it('a graceful stop waits for the running job: its watched key taken meanwhile, the job completes', async () => {
    const s = await start((p) => rules(p, { watch: true }));
    const key = `${s.prefix}:puma::stop::web.3`;
    expect((await postDrain(s.service.url!, 'my-app', r14('web.3'), { password: PASSWORD })).status).toBe(204);
    // The step now waits for the key to be taken (as Puma's plugin would).
    await eventually('the stop key', async () => (await redis.exists(key)) === 1);
    const [job] = await s.queue.getJobs(['active']);
    expect(job).toBeDefined();
    let closed = false;
    const closing = s.service.close().then(() => { closed = true; });
    await new Promise((r) => setTimeout(r, 500));
    expect(closed).toBe(false);
    await redis.del(key);
    await closing;
    service = undefined;
    expect(await (await s.queue.getJob(job!.id!))!.getState()).toBe('completed');
  });

  it('a thread that dies is started again, counted in mallet_worker_thread_restarts_total, and the next firing is acted on once', async () => {
    const s = await start((p) => rules(p, { watch: false }));
    await s.service.workerThread!.terminate();
    await eventually('the restart counted', async () => (await s.service.metrics.registry.getSingleMetricAsString('mallet_worker_thread_restarts_total')).endsWith(' 1'));
    expect((await postDrain(s.service.url!, 'my-app', r14('web.4'), { password: PASSWORD })).status).toBe(204);
    await eventually('web.4 stop key', async () => (await redis.exists(`${s.prefix}:puma::stop::web.4`)) === 1);
    await eventually('the job completed', async () => (await s.queue.getJobCounts('completed')).completed === 1);
    expect(await s.queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed')).toEqual({ completed: 1, failed: 0, active: 0, waiting: 0, delayed: 0 });
  });

  it('its busy time is on /metrics: above 0 once it has worked, never more than the time it has run, and only growing', async () => {
    const started = performance.now();
    const s = await start((p) => rules(p, { watch: false }));
    const busy = async () => Number((await s.service.metrics.registry.getSingleMetricAsString('mallet_worker_thread_busy_seconds_total')).split(' ').at(-1));
    expect((await postDrain(s.service.url!, 'my-app', r14('web.5'), { password: PASSWORD })).status).toBe(204);
    await eventually('the job completed', async () => (await s.queue.getJobCounts('completed')).completed === 1);
    const first = await busy();
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan((performance.now() - started) / 1000);
    expect(await busy()).toBeGreaterThanOrEqual(first);
  });
});
