import { rmSync } from 'node:fs';
import type { Queue, Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findSidekiqProcesses, sidekiqKeys } from '../../src/actions/sidekiq/index.js';
import type { Service } from '../../src/server/service.js';
import { drainLine, frame, postDrain, sampleBody } from '../support/drainClient.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { spawnSidekiq, startPrivateRedis, startPuma, type PrivateRedis, type Spawned, stopAll } from '../support/rubyProcesses.js';
import { httpGet } from '../support/httpGet.js';
import { eventually } from '../support/eventually.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';
import { startFakeHerokuApi, type FakeHerokuApi } from '../support/fakeHerokuApi.js';
import { startNotifyReceiver } from '../support/notifyReceiver.js';

/**
 * The whole graceful path with real processes: an R14 logplex body posted to `mallet serve` →
 * a job on mallet-actions → the action worker → the app's Redis → the real Puma / Sidekiq on
 * "the dyno" stops gracefully. mallet's own state is on the shared test Redis under unique
 * prefixes; the app's Redis (stop keys, Sidekiq's fixed key names) is a private redis-server.
 */
const PASSWORD = 'drain-secret-graceful';
let priv: PrivateRedis;
let api: FakeHerokuApi;
let hook: Awaited<ReturnType<typeof startNotifyReceiver>>;
let appRedis: Redis;
let redis: Redis;
let service: Service;
let queue: Queue;
let closeService: (() => Promise<void>) | undefined;
let dir: string;
const prefix = uniquePrefix('grace');
const queuePrefix = uniquePrefix('graceq');
const running: Spawned[] = [];

beforeAll(async () => {
  priv = await startPrivateRedis();
  api = await startFakeHerokuApi();
  hook = await startNotifyReceiver();
  appRedis = priv.client();
  redis = testRedis();
  const made = tempRulesFile(`version: 1
apps:
  my-app:
    redis_url: \${APP_REDIS_URL}
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.1", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
  # web.2 runs no plugin: its stop key is not consumed, the escalation restarts it.
  - name: puma-r14-unwatched
    match: { source: heroku, process: "web.2", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
        ttl: 3s
      - type: notify
        url: \${HOOK_URL}
    on_failure:
      - type: heroku-restart
  - name: sidekiq-r14
    match: { source: heroku, process: "worker.*", message: '^Error R14 ' }
    actions:
      - type: sidekiq-stop
        quiet_timeout: 60s
        stop_timeout: 60s
`);
  dir = made.dir;
  const rules = made.file;
  ({ service, queue, close: closeService } = await startTestService({
    redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: rules, dir,
    env: { APP_REDIS_URL: priv.url, HOOK_URL: hook.url, HEROKU_API_URL: api.url, HEROKU_API_TOKEN: 'e2e-token' },
  }));
});

afterEach(async () => {
  await stopAll(running.splice(0));
});

afterAll(async () => {
  await closeService?.();
  redis?.disconnect();
  await priv?.stop();
  await api?.close();
  await hook?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});



async function finishedJob(target: string): Promise<Job> {
  return eventually(`the ${target} job to finish`, async () => {
    const jobs = await queue.getJobs(['completed', 'failed']);
    return jobs.find((j) => j.data.target === target);
  }, 90_000);
}

/** On failure the diff shows why: the job's error and its audit log. */
async function expectCompleted(job: Job): Promise<void> {
  const { logs } = await queue.getJobLogs(job.id!);
  expect({ state: await job.getState(), failedReason: job.failedReason, logs }).toMatchObject({ state: 'completed' });
}

describe('R14 drained into mallet stops the real process gracefully', () => {
  it('Puma on web.1: the in-flight request finishes with 200 and Puma exits 0', async () => {
    const { puma, port } = await startPuma(running, 'web.1', priv.url, { MALLET_POLL_INTERVAL: '0.2' });
    await puma.waitForOutput('mallet: watching stop key puma::stop::web.1');
    await puma.waitForOutput('Use Ctrl-C to stop');
    const inFlight = httpGet(port, '/slow');
    await puma.waitForOutput('slow request started');

    const { body, headers } = sampleBody('r14-web');
    expect((await postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers })).status).toBe(204);

    await expectCompleted(await finishedJob('web.1'));
    expect(await inFlight).toEqual({ status: 200, body: 'ok /slow\n' });
    expect(await puma.exited).toBe(0);
    expect(puma.output()).toMatch(/mallet: stop key puma::stop::web\.1 found \(.*\): stopping gracefully/);
    expect(await appRedis.exists('puma::stop::web.1')).toBe(0);
    // mallet saw the plugin take the key: the step is done because it was consumed.
    const { logs } = await queue.getJobLogs((await finishedJob('web.1')).id!);
    expect(logs.some((l) => /^step 1 redis-stop-key: done: SET puma::stop::web\.1 PX 60000; consumed after \d+\.\d s$/.test(l))).toBe(true);
  });

  it('no plugin on web.2: the stop key is not consumed, the on_failure restart is sent once, the operator is told', async () => {
    const body = frame(drainLine('heroku', 'web.2', 'Error R14 (Memory quota exceeded)'));
    expect((await postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': `e2e-unwatched-${Date.now()}` } })).status).toBe(204);
    const job = await finishedJob('web.2');
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/^step 1 redis-stop-key: not consumed: nobody took puma::stop::web\.2 within its TTL \(3000 ms\)/);
    expect(job.attemptsMade).toBe(1);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /apps/my-app/dynos/web.2']);
    const notice = await eventually('the failure notice', async () => hook.received.find((b) => String(b.text).includes('could not remediate my-app web.2')), 10_000);
    expect(String(notice.text)).toContain('on_failure: restart web.2 of my-app: done: DELETE /apps/my-app/dynos/web.2 → 202');
    expect(String(notice.text)).toContain('What to do:');
  });

  it('Sidekiq on worker.1: quiet, running job finishes, clean exit; worker.2 keeps working', async () => {
    const w1 = spawnSidekiq({ redisUrl: priv.url, dyno: 'worker.1', queue: 'q1', concurrency: 1 });
    const w2 = spawnSidekiq({ redisUrl: priv.url, dyno: 'worker.2', queue: 'q2', concurrency: 1 });
    running.push(w1, w2);
    const keys = sidekiqKeys();
    for (const host of ['worker.1', 'worker.2']) {
      await eventually(`${host} registered`, async () => (await findSidekiqProcesses(appRedis, keys, { hostname: host })).length === 1, 90_000);
    }
    const job = (q: string, id: string) =>
      JSON.stringify({ class: 'SlowJob', args: [id, 6], retry: false, queue: q, jid: `${id}000000000000000000000`.slice(0, 24), created_at: Date.now() / 1000, enqueued_at: Date.now() / 1000 });
    await appRedis.multi().sadd('queues', 'q1', 'q2').lpush('queue:q1', job('q1', 'a')).lpush('queue:q2', job('q2', 'b')).exec();
    const events = () => appRedis.lrange('e2e:events', 0, -1);
    await eventually('both jobs running', async () => {
      const ev = await events();
      return ev.includes('start:a:worker.1') && ev.includes('start:b:worker.2');
    }, 90_000);

    const body = frame(drainLine('heroku', 'worker.1', 'Error R14 (Memory quota exceeded)'));
    expect((await postDrain(service.url!, 'my-app', body, { password: PASSWORD })).status).toBe(204);

    const done = await finishedJob('worker.1');
    await expectCompleted(done);
    expect(await w1.exited).toBe(0);
    expect(w1.output()).toContain('Bye!');
    const ev = await events();
    expect(ev.filter((e) => e === 'done:a:worker.1')).toHaveLength(1);
    const { logs } = await queue.getJobLogs(done.id!);
    expect(logs.join('\n')).toMatch(/TSTP sent to worker\.1:/);
    expect(logs.join('\n')).toMatch(/TERM sent to worker\.1:/);
    expect(JSON.stringify(done.data)).not.toContain(priv.url);

    expect(w2.child.exitCode).toBeNull();
    await eventually('job b done on worker.2', async () => (await events()).includes('done:b:worker.2'), 90_000);
  });
});
