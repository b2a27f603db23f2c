import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { startService, type Service } from '../../src/server/service.js';
import { startFakeHerokuApi, type FakeHerokuApi } from '../support/fakeHerokuApi.js';
import { startNotifyReceiver } from '../support/notifyReceiver.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain, sampleBody } from '../support/drainClient.js';
import { eventually } from '../support/eventually.js';
import { consumeStopKeys } from '../support/stopKeyConsumer.js';
import { tempRulesFile } from '../support/rulesFile.js';

/**
 * The whole path a user sees (issue: action queue, "done when"): an R14 logplex body posted to a
 * running service → stop key in Redis with its TTL, a restart on the (fake) Platform API, a
 * notify, each visible as a job with its steps; no secret in the job.
 */
const PASSWORD = 'drain-secret-e2e';
const TOKEN = 'heroku-token-that-must-stay-secret';
const redis = testRedis();
afterAll(() => { redis.disconnect(); });

// `mallet serve` runs the worker in a thread of its own; `mallet worker` (and the other tests) on the event loop.
describe.each([['in a worker thread', 'thread'], ['on the service\'s event loop', true]] as const)('mallet serve, end to end, the action worker %s', (_placement, worker) => {
  const prefix = uniquePrefix('svc');
  const queuePrefix = uniquePrefix('svcq');
  let service: Service;
  let api: FakeHerokuApi;
  let hook: Awaited<ReturnType<typeof startNotifyReceiver>>;
  let queue: Queue;
  let plugin: ReturnType<typeof consumeStopKeys>;


  beforeAll(async () => {
    api = await startFakeHerokuApi();
    hook = await startNotifyReceiver();
    plugin = consumeStopKeys(redis, prefix);
    const { file: rules, dir } = tempRulesFile(`version: 1
apps:
  my-app:
    heroku_api_token: \${TEST_HEROKU_TOKEN}
rules:
  - name: puma-r14
    description: stop Puma gracefully, restart the dyno, tell the team
    match:
      source: heroku
      process: "web.*"
      message: '^Error R14 '
    actions:
      - type: redis-stop-key
        key: "${prefix}:puma::stop::{{target}}"
        ttl: 60s
      - type: heroku-restart
      - type: notify
        url: \${TEST_NOTIFY_URL}
`);
    const config = loadConfig({
      REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix,
      PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, HEROKU_API_URL: api.url,
      MALLET_RULES: rules, TEST_NOTIFY_URL: hook.url, TEST_HEROKU_TOKEN: TOKEN, LOG_LEVEL: 'silent',
    }, dir);
    service = await startService({ config, logger: pino({ level: 'silent' }), worker });
    queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
  });

  afterAll(async () => {
    await service?.close();
    await queue?.close();
    await api?.close();
    await hook?.close();
    plugin?.stop();
    await cleanupPrefix(redis, prefix, queuePrefix);
  });

    it('an R14 body leads to the stop key, a restart and a notify, audited as one job', async () => {
      const { body, headers } = sampleBody('r14-web');
      const res = await postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers });
      expect(res.status).toBe(204);
      // Stored before the 204: the job exists now, whatever its state.
      const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized']);
      expect(jobs).toHaveLength(1);
      const id = jobs[0]!.id!;
      const done = await eventually('the job to complete', async () => (await queue.getJob(id))?.finishedOn ? queue.getJob(id) : undefined);
      expect(await done!.getState(), `job failed: ${done!.failedReason}`).toBe('completed');

      // The stand-in plugin on web.1 took the key: that is when the step is done.
      expect(plugin.taken.get(`${prefix}:puma::stop::web.1`)).toBe('puma-r14');
      const restarts = api.requests.filter((r) => r.method === 'DELETE');
      expect(restarts.map((r) => r.path)).toEqual(['/apps/my-app/dynos/web.1']);
      expect(restarts[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(restarts[0]!.headers.accept).toBe('application/vnd.heroku+json; version=3');
      expect(hook.received).toHaveLength(1);
      expect(String(hook.received[0]!.text)).toContain('puma-r14');

      expect(done!.data).toMatchObject({ rule: 'puma-r14', app: 'my-app', target: 'web.1' });
      expect(done!.data.triggerLines.join('\n')).toContain('Error R14 (Memory quota exceeded)');
      const everything = JSON.stringify(done!.data) + JSON.stringify(done!.returnvalue);
      expect(everything).not.toContain(TOKEN);
      expect(everything).not.toContain(hook.url);
      const { logs } = await queue.getJobLogs(id);
      expect(logs.length).toBeGreaterThanOrEqual(3);
      expect(logs.join('\n')).not.toContain(TOKEN);

      // The worker's metrics are the service's, wherever it runs (a thread posts each change).
      const scrape = () => fetch(`${service.url}/metrics`).then((r) => r.text());
      const text = await eventually('the steps on /metrics', async () => { const t = await scrape(); return t.includes('mallet_actions_total{type="notify",outcome="done"} 1') ? t : undefined; });
      expect(text).toContain('mallet_actions_total{type="redis-stop-key",outcome="done"} 1');
      expect(text).toContain('mallet_actions_total{type="heroku-restart",outcome="done"} 1');
      expect(text).toMatch(/^mallet_trigger_latency_seconds_count 1$/m);
    });

    it('the same frame delivered three times makes one job and one key write', async () => {
      const line = drainLine('heroku', 'web.2', 'Error R14 (Memory quota exceeded)');
      const body = frame(drainLine('heroku', 'web.2', 'Process running mem=600M(117.2%)'), line);
      const headers = { 'Logplex-Frame-Id': 'C0FFEE' + Date.now().toString(16).toUpperCase(), 'Logplex-Drain-Token': 'd.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc', 'Logplex-Msg-Count': '2' };
      const lines = async () => (await service.metrics.linesTotal.get()).values.filter((v) => v.labels.app === 'my-app').reduce((a, v) => a + v.value, 0);
      const before = await lines();
      for (let i = 0; i < 3; i++) expect((await postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers })).status).toBe(204);
      // Skipped whole: the retries are not counted again (SPEC §3).
      expect(await lines()).toBe(before + 2);
      const jobs = (await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized', 'failed'])).filter((j) => j.data.target === 'web.2');
      expect(jobs).toHaveLength(1);
      await eventually('the web.2 job', async () => (await queue.getJob(jobs[0]!.id!))?.finishedOn);
      expect(api.requests.filter((r) => r.path === '/apps/my-app/dynos/web.2')).toHaveLength(1);
      expect(plugin.taken.has(`${prefix}:puma::stop::web.2`)).toBe(true);
    });

    it('/readyz is 200 with rules loaded and Redis up', async () => {
      expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
    });
});
