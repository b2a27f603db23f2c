import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { ERRORS, startFakeHerokuApi, type FakeHerokuApi } from '../support/fakeHerokuApi.js';
import { createHarness, jobLogs, makeFiring, settled, type Harness } from './harness.js';
import type { Firing } from '../../src/rules/Firing.js';
import { acquireRollingSlot, renewRollingSlot } from '../../src/actions/scripts/rollingSlot.js';

let h: Harness;
let api: FakeHerokuApi;
afterEach(async () => {
  await h.close();
  await api.close();
});

describe('rolling limit (limits.per_process_type)', () => {
  it('ten web dynos firing at once with concurrency 1 are restarted one at a time', async () => {
    h = createHarness('roll-one');
    h.limits = { ...h.limits, perProcessType: { concurrency: 1 } };
    api = await startFakeHerokuApi({ delayMs: 40 });
    const queue = h.queue();
    // Two workers, each willing to run several jobs at once: only the limit can serialise them.
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok', concurrency: 5 });
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok', concurrency: 5 });
    const firings = Array.from({ length: 10 }, (_, i) => makeFiring({
      target: `web.${i + 1}`,
      actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: `web.${i + 1}` }],
    }));
    expect(await queue.submit(firings)).toEqual(Array(10).fill('enqueued'));
    for (const f of firings) expect((await settled(queue, f.id, 30_000)).state).toBe('completed');
    expect(api.requests.map((r) => r.path).sort()).toEqual(firings.map((f) => `/apps/my-app/dynos/${f.target}`).sort());
    const spans = [...api.requests].sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.startedAt).toBeGreaterThanOrEqual(spans[i - 1]!.endedAt);
    expect(await h.redis.zcard(h.keys.rolling('my-app', 'web'))).toBe(0);
    // The last job looked for a slot many times (every ~50 ms for ~400 ms) and said so once.
    const last = firings.find((f) => f.target === spans.at(-1)!.path.split('/').at(-1))!;
    const logs = await jobLogs(queue, last.id);
    expect(logs.filter((l) => l.startsWith('waiting: 1 remediation(s) of my-app web already running'))).toHaveLength(1);
  });

  it('concurrency 2 lets two run together but never three, and other process types are not held back', async () => {
    h = createHarness('roll-two');
    h.limits = { ...h.limits, perProcessType: { concurrency: 2 } };
    api = await startFakeHerokuApi({ delayMs: 60 });
    const queue = h.queue();
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok', concurrency: 10 });
    const firings = [
      ...Array.from({ length: 6 }, (_, i) => makeFiring({ target: `web.${i + 1}`, actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: `web.${i + 1}` }] })),
      makeFiring({ target: 'worker.1', actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'worker.1' }] }),
    ];
    await queue.submit(firings);
    for (const f of firings) expect((await settled(queue, f.id, 30_000)).state).toBe('completed');
    // On failure, the timeline says what ran when.
    const timeline = api.requests.map((r) => `${r.path} ${r.startedAt}–${r.endedAt}`).join('\n');
    const web = api.requests.filter((r) => r.path.includes('/web.'));
    // The most requests in flight at one instant (a sweep over starts and ends; an end and a start
    // in the same millisecond do not overlap: the slot is released before the next is taken).
    const edges = web.flatMap((r) => [[r.startedAt, 1], [r.endedAt, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let inFlight = 0;
    let maxOverlap = 0;
    for (const [, d] of edges) maxOverlap = Math.max(maxOverlap, (inFlight += d));
    expect(maxOverlap, timeline).toBeLessThanOrEqual(2);
    expect(api.requests, timeline).toHaveLength(7);
    // Held back is what the job log says, not a timing: web jobs waited for a slot, worker.1 never did.
    const waited = async (f: Firing) => (await jobLogs(queue, f.id)).some((l) => l.startsWith('waiting:'));
    expect(await waited(firings.at(-1)!), timeline).toBe(false);
    expect((await Promise.all(firings.slice(0, 6).map(waited))).filter(Boolean).length, timeline).toBeGreaterThanOrEqual(1);
  });

  it('a slot held by a dead worker frees itself when its lease runs out', async () => {
    h = createHarness('roll-lease');
    api = await startFakeHerokuApi();
    const queue = h.queue();
    // A worker that died while holding the only web slot; its lease has already run out.
    await h.redis.zadd(h.keys.rolling('my-app', 'web'), Date.now() - 1, 'f-dead-job');
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok' });
    const firing = makeFiring({ actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.1' }] });
    await queue.submit([firing]);
    expect((await settled(queue, firing.id)).state).toBe('completed');
    expect(await h.redis.zscore(h.keys.rolling('my-app', 'web'), 'f-dead-job')).toBeNull();
  });
  it('renewing extends a slot still held, and never takes back one whose lease ran out', async () => {
    h = createHarness('roll-renew');
    api = await startFakeHerokuApi();
    const key = h.keys.rolling('my-app', 'web');
    const now = Date.now();
    expect(await acquireRollingSlot(h.redis, key, 'job-a', now, now + 1000, 1)).toBe(true);
    expect(await renewRollingSlot(h.redis, key, 'job-a', now + 60_000)).toBe(true);
    expect(Number(await h.redis.zscore(key, 'job-a'))).toBe(now + 60_000);
    // job-a's lease ran out and job-b took the only slot: job-a's late renewal must not come back.
    await h.redis.zadd(key, String(now - 1), 'job-a');
    expect(await acquireRollingSlot(h.redis, key, 'job-b', now, now + 60_000, 1)).toBe(true);
    expect(await renewRollingSlot(h.redis, key, 'job-a', now + 60_000)).toBe(false);
    expect(await h.redis.zrange(key, '0', '-1')).toEqual(['job-b']);
  });
  it('a remediation that failed and will be retried keeps its slot through the backoff', async () => {
    h = createHarness('roll-keep');
    h.limits = { ...h.limits, perProcessType: { concurrency: 1 } };
    api = await startFakeHerokuApi();
    let web1 = 0;
    // web.1's first restart answers 503 after 100 ms; web.2 fires while it is in flight.
    api.respondWith((r) => (r.path.endsWith('/web.1') && web1++ === 0 ? { ...ERRORS.unavailable(), delayMs: 100 } : { status: 202, body: {} }));
    const queue = h.queue();
    // web.2 looks for a slot every ~10 ms, so it would take one freed during web.1's backoff.
    h.worker({ herokuApiUrl: api.url, herokuApiToken: 'tok', concurrency: 5, rollingRetryMs: 10 });
    const firings = ['web.1', 'web.2'].map((d) => makeFiring({ target: d, actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: d }] }));
    await queue.submit([firings[0]!]);
    await eventually('web.1 restart sent', async () => api.requests.length > 0);
    await queue.submit([firings[1]!]);
    for (const f of firings) expect((await settled(queue, f.id)).state).toBe('completed');
    const timeline = api.requests.map((r) => `${r.path} ${r.startedAt}–${r.endedAt}`).join('\n');
    expect(api.requests.map((r) => r.path), timeline).toEqual(['/apps/my-app/dynos/web.1', '/apps/my-app/dynos/web.1', '/apps/my-app/dynos/web.2']);
  });
});
