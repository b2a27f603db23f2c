import { afterEach, describe, expect, it } from 'vitest';
import { HEROKU_BUDGET_PER_HOUR, HEROKU_RATE_LIMIT_WAIT_MS, restartPath, retryAfterMs } from '../../src/actions/executors/herokuRestart.js';
import type { HerokuRestartActionSpec } from '../../src/rules/Firing.js';
import { eventually } from '../support/eventually.js';
import { ERRORS, startFakeHerokuApi, type FakeHerokuApi } from '../support/fakeHerokuApi.js';
import { createHarness, jobLogs, makeFiring, settled, type Harness } from './harness.js';

let h: Harness;
let api: FakeHerokuApi;

const restart = (dyno: string, scope: 'dyno' | 'process-type' = 'dyno'): HerokuRestartActionSpec => ({ type: 'heroku-restart', app: 'my-app', scope, dyno });

describe('heroku-restart', () => {
  afterEach(async () => {
    await h.close();
    await api.close();
  });

  it('sends the exact Platform API request and is done on 202', async () => {
    h = createHarness('hr-exact');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok-default' });
    const firing = makeFiring({ target: 'web.2', actions: [restart('web.2')] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests).toHaveLength(1);
    const req = api.requests[0]!;
    expect(req.method).toBe('DELETE');
    expect(req.path).toBe('/apps/my-app/dynos/web.2');
    expect(req.headers.accept).toBe('application/vnd.heroku+json; version=3');
    expect(req.headers.authorization).toBe('Bearer tok-default');
    expect(req.headers['user-agent']).toMatch(/^mallet\/\d+\.\d+\.\d+/);
    const logs = await jobLogs(queue, firing.id);
    expect(logs.some((l) => /^step 1 heroku-restart: done: DELETE \/apps\/my-app\/dynos\/web\.2 → 202 \(Request-Id [0-9a-f-]{36}, RateLimit-Remaining \d+\)$/.test(l))).toBe(true);
    expect(logs.join('\n')).not.toContain('tok-default');
  });

  it('restarts a process type through /formations/{type} with the app token from the environment', async () => {
    h = createHarness('hr-formation');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok-default', env: { APP_TOKEN: 'tok-app' } });
    const firing = makeFiring({ target: 'web.2', actions: [{ ...restart('web.2', 'process-type'), tokenRef: '${APP_TOKEN}' }] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests.map((r) => `${r.method} ${r.path} ${String(r.headers.authorization)}`)).toEqual(['DELETE /apps/my-app/formations/web Bearer tok-app']);
  });

  it('uses apps.X.heroku_api_token when the action names no token', async () => {
    h = createHarness('hr-apptoken');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok-default', env: { MY_APP_TOKEN: 'tok-my-app' }, getAppHerokuTokenRef: (app) => (app === 'my-app' ? '${MY_APP_TOKEN}' : undefined) });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests[0]!.headers.authorization).toBe('Bearer tok-my-app');
  });

  it('429 with Retry-After: postponed without spending an attempt, then done', async () => {
    h = createHarness('hr-429');
    api = await startFakeHerokuApi();
    api.respondWith([{ ...ERRORS.rateLimit(), headers: { 'RateLimit-Remaining': '0', 'Retry-After': '1' } }, { status: 202, body: {} }]);
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    const { state } = await settled(queue, firing.id);
    expect(state).toBe('completed');
    expect(api.requests.map((r) => r.path)).toEqual(['/apps/my-app/dynos/web.1', '/apps/my-app/dynos/web.1']);
    const logs = await jobLogs(queue, firing.id);
    expect(logs.some((l) => l.startsWith('step 1 heroku-restart: postponed: DELETE /apps/my-app/dynos/web.1 → 429 rate_limit: Your account reached the API rate limit Please wait'))).toBe(true);
    expect(logs.some((l) => l.endsWith('waiting 1 s for the account pool'))).toBe(true);
    expect(logs.filter((l) => l.includes('failed'))).toEqual([]);
  });

  it('429 without Retry-After: the job waits a minute for the pool (delayed, no attempt spent), and so does every worker on the token', async () => {
    h = createHarness('hr-429-wait');
    api = await startFakeHerokuApi();
    api.respondWith([ERRORS.rateLimit()]);
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    let postponed = false;
    for (let i = 0; i < 400 && !postponed; i++) {
      postponed = (await jobLogs(queue, firing.id)).some((l) => l.startsWith('step 1 heroku-restart: postponed'));
      if (!postponed) await new Promise((r) => setTimeout(r, 25));
    }
    expect(postponed).toBe(true);
    const job = (await queue.queue.getJob(firing.id))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);
    expect((await jobLogs(queue, firing.id)).some((l) => l.endsWith(`waiting ${HEROKU_RATE_LIMIT_WAIT_MS / 1000} s for the account pool`))).toBe(true);
    const { createHash } = await import('node:crypto');
    const remainingKey = h.keys.herokuRemaining(createHash('sha256').update('tok').digest('hex').slice(0, 16));
    expect(await h.redis.get(remainingKey)).toBe('0');
    expect(await h.redis.pttl(remainingKey)).toBeGreaterThan(HEROKU_RATE_LIMIT_WAIT_MS / 2);
    expect(api.requests).toHaveLength(1);
  });

  it('503 then 202: retried with exponential backoff, spending an attempt', async () => {
    h = createHarness('hr-503');
    api = await startFakeHerokuApi();
    api.respondWith([ERRORS.unavailable(), { status: 202, body: {} }]);
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests).toHaveLength(2);
    const logs = await jobLogs(queue, firing.id);
    expect(logs.some((l) => l.startsWith('step 1 heroku-restart: failed, will retry: DELETE /apps/my-app/dynos/web.1 → 503 service_unavailable'))).toBe(true);
    expect(logs.some((l) => l.includes('postponed'))).toBe(false);
  });

  it('a restart an earlier attempt sent but never recorded (the worker died) is not sent again', async () => {
    h = createHarness('hr-unknown');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    const firing = makeFiring({ actions: [h.stopAction('web.1'), restart('web.1')] });
    await queue.submit([firing]);
    // What a worker SIGKILLed between the API's 202 and the step record leaves behind.
    const startedAt = Date.now() - 5000;
    await h.redis.hset(h.keys.jobSteps(firing.id), '1:started', String(startedAt));
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests).toHaveLength(0);
    expect(h.taken.get(h.stopKey('web.1'))).toBe('1');
    const logs = await jobLogs(queue, firing.id);
    expect(logs).toContain(`step 2 heroku-restart: not repeated: an earlier attempt sent it at ${new Date(startedAt).toISOString()} and stopped before its answer was recorded`);
    expect(logs.some((l) => l.startsWith('step 2 heroku-restart: warning: outcome unknown'))).toBe(true);
  });

  it('a connection dropped after the request reached the API: not sent again, completed with the outcome-unknown warning', async () => {
    h = createHarness('hr-hangup');
    api = await startFakeHerokuApi();
    // The API takes the restart, then the connection breaks before its answer arrives.
    api.respondWith([{ status: 202, body: {}, hangUp: true }]);
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(api.requests).toHaveLength(1);
    const logs = await jobLogs(queue, firing.id);
    expect(logs.some((l) => l.startsWith('step 1 heroku-restart: failed, will retry: Platform API did not answer'))).toBe(true);
    expect(logs.some((l) => l.startsWith('step 1 heroku-restart: not repeated: an earlier attempt sent it at '))).toBe(true);
    expect(logs.some((l) => l.startsWith('step 1 heroku-restart: warning: outcome unknown'))).toBe(true);
  });

  it('connection refused: nothing reached the API, so the retry sends it', async () => {
    h = createHarness('hr-refused');
    api = await startFakeHerokuApi();
    const closedUrl = api.url;
    await api.close();
    const queue = h.queue();
    h.worker({ herokuApiUrl: closedUrl, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    // The second attempt tried again: the first was not taken for "sent, outcome unknown".
    const logs = await eventually('a second refused attempt', async () => {
      const l = await jobLogs(queue, firing.id);
      return l.filter((x) => x.includes('Platform API unreachable: ECONNREFUSED')).length >= 2 && l;
    });
    expect(logs.some((l) => l.includes('not repeated'))).toBe(false);
    api = await startFakeHerokuApi(); // for afterEach
  });

  it('404: fails permanently with the API message in failedReason', async () => {
    h = createHarness('hr-404');
    api = await startFakeHerokuApi();
    api.respondWith([ERRORS.notFound()]);
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ target: 'web.9', actions: [restart('web.9')] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/^step 1 heroku-restart: DELETE \/apps\/my-app\/dynos\/web\.9 → 404 not_found: Couldn't find that dyno\. /);
    expect(api.requests).toHaveLength(1);
  });

  it('the fake answers 406 without the Accept header, like the real API', async () => {
    h = createHarness('hr-406');
    api = await startFakeHerokuApi();
    const res = await fetch(`${api.url}/apps/my-app/dynos/web.1`, { method: 'DELETE', headers: { Authorization: 'Bearer x' } });
    expect(res.status).toBe(406);
    expect(((await res.json()) as { id: string }).id).toBe('not_acceptable');
    expect(res.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('without any token the step fails permanently, saying what to set', async () => {
    h = createHarness('hr-notoken');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('failed');
    expect(job.failedReason).toContain('set HEROKU_API_TOKEN or apps.<app>.heroku_api_token');
    expect(api.requests).toHaveLength(0);
  });

  it('over the shared hourly budget the job waits (delayed, no attempt spent) and the API is not called', async () => {
    h = createHarness('hr-budget');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update('tok').digest('hex').slice(0, 16);
    const now = Date.now();
    const members = Array.from({ length: HEROKU_BUDGET_PER_HOUR }, (_, i) => [now - i, `other-${i}`] as const).flat();
    await h.redis.zadd(h.keys.herokuBudget(hash), ...members);
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [restart('web.1')] });
    await queue.submit([firing]);
    let state = '';
    for (let i = 0; i < 400 && state !== 'delayed'; i++) {
      state = await (await queue.queue.getJob(firing.id))!.getState();
      if (state !== 'delayed') await new Promise((r) => setTimeout(r, 25));
    }
    expect(state).toBe('delayed');
    const job = (await queue.queue.getJob(firing.id))!;
    expect(job.attemptsMade).toBe(0);
    expect(api.requests).toHaveLength(0);
    expect((await jobLogs(queue, firing.id)).some((l) => l.startsWith('step 1 heroku-restart: postponed: Platform API budget spent'))).toBe(true);
  });

  it('RateLimit-Remaining below the floor makes the next restart wait for the pool to refill', async () => {
    h = createHarness('hr-remaining');
    api = await startFakeHerokuApi({ remaining: 20 });
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const first = makeFiring({ target: 'web.1', actions: [restart('web.1')] });
    await queue.submit([first]);
    expect((await settled(queue, first.id)).state).toBe('completed');
    const second = makeFiring({ target: 'worker.1', actions: [restart('worker.1')] });
    await queue.submit([second]);
    let state = '';
    for (let i = 0; i < 400 && state !== 'delayed'; i++) {
      state = await (await queue.queue.getJob(second.id))!.getState();
      if (state !== 'delayed') await new Promise((r) => setTimeout(r, 25));
    }
    expect(state).toBe('delayed');
    expect(api.requests).toHaveLength(1);
  });
});

describe('restartPath', () => {
  it.each([
    ['web.1', 'dyno', '/apps/my-app/dynos/web.1'],
    ['web.1', 'process-type', '/apps/my-app/formations/web'],
    ['worker', 'process-type', '/apps/my-app/formations/worker'],
    // Fir: the full pod name for one dyno, its process type for the formation.
    ['web-12a34b56d-e78f9', 'dyno', '/apps/my-app/dynos/web-12a34b56d-e78f9'],
    ['web-12a34b56d-e78f9', 'process-type', '/apps/my-app/formations/web'],
    ['node-worker-5d9c8b7f6-q2x4z', 'process-type', '/apps/my-app/formations/node-worker'],
  ] as const)('%s (%s) → %s', (dyno, scope, path) => {
    expect(restartPath({ type: 'heroku-restart', app: 'my-app', scope, dyno })).toBe(path);
  });

  it.each(['../../account', 'web.1/actions/stop', 'web.1?x=1', 'web%2e1', 'Web.1', 'web.', 'web-12a34b56d-e78f9/actions/stop', 'web-12a34b56d-E78F9', 'web--e78f9', '-12a34b56d-e78f9'])('refuses the dyno %j', (dyno) => {
    expect(() => restartPath({ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno })).toThrow(/shape/);
  });

  it.each(['../x', 'my app', 'My-App', 'a/b'])('refuses the app %j', (app) => {
    expect(() => restartPath({ type: 'heroku-restart', app, scope: 'dyno', dyno: 'web.1' })).toThrow(/shape/);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  it.each([
    ['120', 120_000],
    ['0', 1000],
    ['Wed, 01 May 2024 12:00:30 GMT', 30_000],
    ['Wed, 01 May 2024 11:00:00 GMT', 1000],
    ['999999999', 3_600_000],
  ] as const)('%j → %d ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });

  it.each([null, '', 'soon', '-5', '1.5'])('%j → undefined (the default wait)', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});
