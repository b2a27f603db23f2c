import { afterEach, describe, expect, it } from 'vitest';
import { stopKeyExecutor } from '../../src/actions/executors/stopKey.js';
import type { Executor } from '../../src/actions/Executor.js';
import type { StopKeyActionSpec } from '../../src/rules/Firing.js';
import { testRedisUrl } from '../support/redis.js';
import { startFakeHerokuApi } from '../support/fakeHerokuApi.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { Redis } from 'ioredis';
import { consumeStopKeys, createHarness, jobLogs, makeFiring, metricValue, settled, startWebhook, type Harness } from './harness.js';

let h: Harness;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await h.close();
});

/** The real stop-key executor, counting its runs. */
function countingStopKey(): { executor: Executor; runs: () => number } {
  let runs = 0;
  const executor: Executor<StopKeyActionSpec> = {
    type: 'redis-stop-key',
    run: (action, ctx) => { runs++; return stopKeyExecutor.run(action, ctx); },
  };
  return { executor: executor as Executor, runs: () => runs };
}

describe('action worker', () => {
  it('a retried job does not repeat a step that succeeded', async () => {
    h = createHarness('aw-retry');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(500, 502);
    const counting = countingStopKey();
    const queue = h.queue();
    h.worker({ env: { HOOK_URL: hook.url }, executors: [counting.executor] });
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopping web.1' }] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('completed');
    expect(job.attemptsMade).toBe(3); // two failed attempts and the one that completed
    // The audit of a done job does not show it failed: the earlier failure is in the log.
    expect(job.failedReason ?? '').toBe('');
    expect(counting.runs()).toBe(1);
    expect(hook.bodies).toHaveLength(3);
    expect(hook.bodies[2]).toMatchObject({ text: 'stopping web.1', rule: 'puma-memory', app: 'my-app', target: 'web.1', jobId: firing.id });
    const logs = await jobLogs(queue, firing.id);
    expect(logs.filter((l) => l === 'step 1 redis-stop-key: already done, skipped')).toHaveLength(2);
    expect(logs.filter((l) => l.startsWith('step 2 notify: failed, will retry'))).toHaveLength(2);
    expect(logs).toContain('done after 3 attempt(s); an earlier one failed: notify: POST → 502');
    expect(logs.join('\n')).not.toContain('s3cr3t-token');
    expect(JSON.stringify(job.data)).not.toContain('s3cr3t-token');
    expect(JSON.stringify(job.returnvalue)).not.toContain('s3cr3t-token');
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'notify', outcome: 'retry' })).toBe(2);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'notify', outcome: 'done' })).toBe(1);
    const latency = (await h.metrics.registry.getSingleMetric('mallet_trigger_latency_seconds')!.get()).values.find((v) => (v as { metricName?: string }).metricName === 'mallet_trigger_latency_seconds_count');
    expect(latency?.value).toBe(1);
  });

  it('an empty notify text becomes a summary of rule, app, dyno, first trigger line and actions', async () => {
    h = createHarness('aw-text');
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue();
    h.worker({ env: { HOOK_URL: hook.url } });
    const firing = makeFiring({ target: 'web.3', actions: [h.stopAction('web.3'), { type: 'notify', urlRef: '${HOOK_URL}', text: '' }] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(hook.bodies[0]!.text).toBe([
      'mallet: rule *puma-memory* fired on *my-app* web.3',
      '> 2023-04-06T19:13:35.126587+00:00 heroku[web.3]: Error R14 (Memory quota exceeded)',
      `actions: SET ${h.stopKey('web.3')} PX 60000 on the app's Redis`,
    ].join('\n'));
  });

  it('a notify answered 4xx fails the job for good', async () => {
    h = createHarness('aw-4xx');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(404);
    const queue = h.queue();
    h.worker({ env: { HOOK_URL: hook.url } });
    const firing = makeFiring({ actions: [{ type: 'notify', urlRef: '${HOOK_URL}', text: 'x' }] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe('step 1 notify: notify: POST → 404');
  });

  it('an unset ${VAR} fails permanently naming the variable', async () => {
    h = createHarness('aw-unset');
    const queue = h.queue();
    h.worker({ env: {} });
    const firing = makeFiring({ actions: [{ type: 'notify', urlRef: '${MISSING_HOOK}', text: 'x' }] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('failed');
    expect(job.failedReason).toContain('environment variable MISSING_HOOK is not set');
  });

  it('an action type without an executor fails permanently with a clear message', async () => {
    h = createHarness('aw-unknown');
    const queue = h.queue();
    h.worker();
    const firing = makeFiring({ target: 'worker.1', actions: [{ type: 'sidekiq-stop', hostname: 'worker.1', quietTimeoutMs: 1000, stopTimeoutMs: 1000 }] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe('no executor for action type "sidekiq-stop": this worker was started without it');
  });

  it('writes the stop key to the app Redis named by apps.X.redis_url', async () => {
    h = createHarness('aw-appredis');
    const queue = h.queue();
    const appUrl = new URL(testRedisUrl());
    appUrl.pathname = '/3';
    h.worker({ env: { APP_REDIS: appUrl.toString() }, getAppRedisRef: (app) => (app === 'my-app' ? '${APP_REDIS}' : undefined) });
    // The plugin reads the app's Redis (database 3), and only it takes the key.
    const appRedis = new Redis(appUrl.toString());
    const plugin = consumeStopKeys(appRedis, h.prefix);
    closers.push(async () => { plugin.stop(); appRedis.disconnect(); });
    const firing = makeFiring({ actions: [h.stopAction('web.1')] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(plugin.taken.get(h.stopKey('web.1'))).toBe('1');
    expect(h.taken.size).toBe(0);
  });
});

describe('a run that lost its job lock', () => {
  it('does not act while another run holds the job: the restart is sent once, by the run holding the lock', async () => {
    h = createHarness('aw-lock');
    const api = await startFakeHerokuApi();
    closers.push(api.close);
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.1' }] });
    const lockKey = `${h.queuePrefix}:${ACTION_QUEUE}:${firing.id}:lock`;
    // What the API saw as the job's lock holder when each restart arrived.
    const holders: Array<string | null> = [];
    api.respondWith(async () => { holders.push(await h.redis.get(lockKey)); return { status: 202, body: {} }; });
    let stolen = false;
    // Step 1 ends just as BullMQ hands the job to another run (after a Redis outage past the
    // lock duration): the lock now holds that run's token.
    const stealing: Executor<StopKeyActionSpec> = {
      type: 'redis-stop-key',
      async run(action, ctx) {
        const result = await stopKeyExecutor.run(action, ctx);
        if (!stolen) { stolen = true; await h.redis.set(lockKey, 'another-run', 'PX', 800); }
        return result;
      },
    };
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok', executors: [stealing as Executor], lockDuration: 1000, stalledInterval: 500 });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id, 20_000)).state).toBe('completed');
    expect(holders).toHaveLength(1);
    expect(holders[0]).not.toBe('another-run');
  });
});
