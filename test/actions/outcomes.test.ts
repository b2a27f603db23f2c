import { afterEach, describe, expect, it } from 'vitest';
import { startFakeHerokuApi, type FakeHerokuApi } from '../support/fakeHerokuApi.js';
import { createHarness, jobLogs, makeFiring, metricValue, settled, startWebhook, type Harness } from './harness.js';
import type { ResolvedAction } from '../../src/rules/Firing.js';

let h: Harness;
let api: FakeHerokuApi | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await api?.close();
  api = undefined;
  await h.close();
});

const waitFor = async (what: () => boolean) => {
  for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
};

describe('every outcome reaches the operator', () => {
  it('a stop key nobody takes is not consumed: failed for good (not retried), counted not_consumed, the on_failure restart sent once, the operator told', async () => {
    h = createHarness('out-nc');
    api = await startFakeHerokuApi();
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue();
    h.worker({ env: { HOOK_URL: hook.url }, herokuApiUrl: api.url, herokuApiToken: 'tok' });
    // A dyno no consumer watches (the stand-in plugin only takes puma::stop:: keys).
    const key = `${h.prefix}:nobody::stop::web.7`;
    const stop: ResolvedAction = { type: 'redis-stop-key', key, value: '1', ttlMs: 1500 };
    const firing = makeFiring({
      target: 'web.7',
      actions: [stop, { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopping web.7' }],
      onFailure: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.7' }],
    });
    await queue.submit([firing]);

    const { state, job } = await settled(queue, firing.id, 20_000);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/^step 1 redis-stop-key: not consumed: nobody took .*nobody::stop::web\.7 within its TTL \(1500 ms\)/);
    expect(job.stacktrace ?? []).toEqual([]);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'redis-stop-key', outcome: 'not_consumed' })).toBe(1);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /apps/my-app/dynos/web.7']);
    expect(await h.redis.zcard(h.keys.rolling('my-app', 'web'))).toBe(0);

    await waitFor(() => hook.bodies.length >= 1);
    expect(hook.bodies).toHaveLength(1);
    const text = String(hook.bodies[0]!.text);
    expect(text).toContain('mallet could not remediate my-app web.7 (rule *puma-memory*): step 1 redis-stop-key: not consumed');
    expect(text).toContain(`1. SET ${key} PX 1500 on the app's Redis: failed: not consumed`);
    expect(text).toContain('2. notify ${HOOK_URL}: not run');
    expect(text).toContain('on_failure: restart web.7 of my-app: done: DELETE /apps/my-app/dynos/web.7 → 202');
    expect(text).toContain('What to do:');
    expect(text).toContain('is the Puma plugin or the agent installed on that dyno');
    const logs = await jobLogs(queue, firing.id);
    expect(logs.filter((l) => l.startsWith('on_failure 1 heroku-restart: done'))).toHaveLength(1);
  });

  it('a stop key the plugin takes is consumed and done, and no escalation runs', async () => {
    h = createHarness('out-c');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [h.stopAction('web.1')], onFailure: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.1' }] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(h.taken.get(h.stopKey('web.1'))).toBe('1');
    expect((await jobLogs(queue, firing.id)).some((l) => /^step 1 redis-stop-key: done: SET .* PX 60000; consumed after \d+\.\d s$/.test(l))).toBe(true);
    expect(api.requests).toHaveLength(0);
  });

  it('a step failed after its last attempt is notified with each action and its result', async () => {
    h = createHarness('out-last');
    api = await startFakeHerokuApi();
    api.respondWith(() => ({ status: 503, body: { id: 'unavailable', message: 'try later' } }));
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue({ attempts: 2 });
    h.worker({ env: { HOOK_URL: hook.url }, herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [
      { type: 'notify', urlRef: '${HOOK_URL}', text: 'restarting web.1' },
      { type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.1' },
    ] });
    await queue.submit([firing]);
    const { state, job } = await settled(queue, firing.id, 20_000);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(2);
    await waitFor(() => hook.bodies.length >= 2);
    expect(hook.bodies.map((b) => String(b.text).split('\n')[0])).toEqual([
      'restarting web.1',
      expect.stringContaining('mallet could not remediate my-app web.1 (rule *puma-memory*): step 2 heroku-restart: DELETE /apps/my-app/dynos/web.1 → 503'),
    ]);
    const text = String(hook.bodies[1]!.text);
    expect(text).toContain('1. notify ${HOOK_URL}: done: notify POST → 200');
    expect(text).toContain('2. restart web.1 of my-app: failed: DELETE /apps/my-app/dynos/web.1 → 503');
    expect(text).toContain('on_failure: none configured');
  });
});
