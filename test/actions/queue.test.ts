import { afterEach, describe, expect, it } from 'vitest';
import { createHarness, jobLogs, makeFiring, metricValue, settled, startWebhook, type Harness } from './harness.js';

let h: Harness;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await h.close();
});

describe('ActionQueue + worker', () => {
  it('a firing writes the stop key with its TTL, done once the plugin took it', async () => {
    h = createHarness('aq-stop');
    const queue = h.queue();
    h.worker();
    const firing = makeFiring({ actions: [h.stopAction('web.1', 60_000)] });
    expect(await queue.submit([firing])).toEqual(['enqueued']);
    const { state } = await settled(queue, firing.id);
    expect(state).toBe('completed');
    expect(h.taken.get(h.stopKey('web.1'))).toBe('1');
    const logs = await jobLogs(queue, firing.id);
    expect(logs.find((l) => l.startsWith('step 1 redis-stop-key: done'))).toMatch(new RegExp(`^step 1 redis-stop-key: done: SET ${h.stopKey('web.1')} PX 60000; consumed after \\d+\\.\\d s$`));
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'redis-stop-key', outcome: 'done' })).toBe(1);
    expect(await metricValue(h.metrics, 'mallet_firings_total', { rule: 'puma-memory', outcome: 'enqueued' })).toBe(1);
  });

  it('the same firing submitted three times is one job and one key write', async () => {
    h = createHarness('aq-dup');
    const queue = h.queue();
    const firing = makeFiring({ target: 'web.2', actions: [h.stopAction('web.2')] });
    const outcomes = [...(await queue.submit([firing])), ...(await queue.submit([firing])), ...(await queue.submit([firing]))];
    expect(outcomes).toEqual(['enqueued', 'duplicate', 'duplicate']);
    expect(await queue.queue.getJobCountByTypes('waiting', 'active', 'completed', 'delayed')).toBe(1);
    h.worker();
    await settled(queue, firing.id);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'redis-stop-key', outcome: 'done' })).toBe(1);
    expect(await metricValue(h.metrics, 'mallet_firings_total', { outcome: 'duplicate' })).toBe(2);
  });

  it('two submits racing for one firing store one job and report one duplicate', async () => {
    h = createHarness('aq-race');
    const a = h.queue();
    const b = h.queue();
    const firing = makeFiring({ actions: [h.stopAction('web.3')] });
    const outcomes = (await Promise.all([a.submit([firing]), b.submit([firing])])).flat();
    expect(outcomes.sort()).toEqual(['duplicate', 'enqueued']);
  });

  it('dry run records what each step would do and executes nothing', async () => {
    h = createHarness('aq-dry');
    const queue = h.queue({ dryRun: true });
    h.worker();
    const firing = makeFiring({ target: 'web.4', actions: [h.stopAction('web.4'), { type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.4' }] });
    expect(await queue.submit([firing])).toEqual(['dry_run']);
    const { state, job } = await settled(queue, firing.id);
    expect(state).toBe('completed');
    expect(job.data.mode).toBe('dry_run');
    expect(await h.redis.exists(h.stopKey('web.4'))).toBe(0);
    const logs = await jobLogs(queue, firing.id);
    expect(logs).toEqual([
      `step 1 redis-stop-key: dry run, would SET ${h.prefix}:puma::stop::web.4 PX 60000 on the app's Redis`,
      'step 2 heroku-restart: dry run, would restart web.4 of my-app',
    ]);
  });

  it('a rule-level dry_run firing is dry run too and does not count against the storm guard', async () => {
    h = createHarness('aq-dry-rule');
    h.limits = { ...h.limits, perApp: { maxFirings: 1, withinMs: 600_000 } };
    const queue = h.queue();
    const dry = makeFiring({ dryRun: true, target: 'web.1', actions: [h.stopAction('web.1')] });
    const live = makeFiring({ target: 'web.2', actions: [h.stopAction('web.2')] });
    expect(await queue.submit([dry])).toEqual(['dry_run']);
    expect(await queue.submit([live])).toEqual(['enqueued']);
  });

  it('storm guard: beyond per_app.max_firings jobs are recorded as held, and a notify says so', async () => {
    h = createHarness('aq-storm');
    h.limits = { ...h.limits, perApp: { maxFirings: 2, withinMs: 600_000 } };
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue();
    const firings = [1, 2, 3, 4].map((n) => makeFiring({
      target: `web.${n}`, firedAt: Date.now(),
      actions: [h.stopAction(`web.${n}`), { type: 'notify', urlRef: '${HOOK_URL}', text: '' }],
    }));
    const outcomes: string[] = [];
    for (const f of firings) outcomes.push(...(await queue.submit([f])));
    expect(outcomes).toEqual(['enqueued', 'enqueued', 'held', 'held']);
    h.worker({ env: { HOOK_URL: hook.url } });
    for (const f of firings) expect((await settled(queue, f.id)).state).toBe('completed');
    expect([...h.taken.keys()].sort()).toEqual([h.stopKey('web.1'), h.stopKey('web.2')]);
    const held = (await queue.queue.getJob(firings[2]!.id))!;
    expect(held.data.mode).toBe('held');
    const heldTexts = hook.bodies.filter((b) => String(b.text).includes('held'));
    expect(heldTexts.map((b) => b.target).sort()).toEqual(['web.3', 'web.4']);
    expect(String(heldTexts[0]!.text)).toContain('limits.per_app');
    expect(await jobLogs(queue, firings[3]!.id)).toContain(`step 1 redis-stop-key: held, did not SET ${h.prefix}:puma::stop::web.4 PX 60000 on the app's Redis`);
    expect(await metricValue(h.metrics, 'mallet_firings_total', { outcome: 'held' })).toBe(2);
  });

  it('a retried submit of the same firing does not count twice against the limits', async () => {
    h = createHarness('aq-idem');
    h.limits = { ...h.limits, perApp: { maxFirings: 2, withinMs: 600_000 } };
    const queue = h.queue();
    const first = makeFiring({ target: 'web.1', actions: [h.stopAction('web.1')] });
    const second = makeFiring({ target: 'web.2', actions: [h.stopAction('web.2')] });
    await queue.submit([first]);
    await queue.submit([first]);
    await queue.submit([first]);
    expect(await queue.submit([second])).toEqual(['enqueued']);
    expect(await h.redis.zcard(h.keys.stormGuard('my-app'))).toBe(2);
  });

  it('flapping: the same target left alone after flapping.max_firings, whichever rule fires it, and notified', async () => {
    h = createHarness('aq-flap');
    h.limits = { ...h.limits, flapping: { maxFirings: 2, withinMs: 3_600_000 } };
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue();
    const rules = ['web-memory-high', 'web-memory-quota', 'web-memory-escalate'];
    const firings = [1, 2, 3].map((n) => makeFiring({
      rule: rules[n - 1]!, target: 'web.7', window: String(n),
      actions: [{ type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.7' }, { type: 'notify', urlRef: '${HOOK_URL}', text: 'restarting web.7' }],
    }));
    const outcomes: string[] = [];
    for (const f of firings) outcomes.push(...(await queue.submit([f])));
    expect(outcomes).toEqual(['enqueued', 'enqueued', 'flapping']);
    // Counted once per firing id, and per target: a retried submit and another dyno do not count.
    expect(await queue.submit([firings[1]!])).toEqual(['duplicate']);
    expect(await h.redis.zcard(h.keys.flapping('my-app', 'web.7'))).toBe(3);
    expect(await queue.submit([makeFiring({ rule: rules[0]!, target: 'web.8', actions: [h.stopAction('web.8')] })])).toEqual(['enqueued']);
    const flapping = (await queue.queue.getJob(firings[2]!.id))!;
    expect(flapping.data.mode).toBe('flapping');
    // Only the flapping job runs here: the Platform API is not reachable, and must not be called.
    await queue.queue.remove(firings[0]!.id);
    await queue.queue.remove(firings[1]!.id);
    h.worker({ env: { HOOK_URL: hook.url } });
    expect((await settled(queue, firings[2]!.id)).state).toBe('completed');
    expect(hook.bodies).toHaveLength(1);
    expect(String(hook.bodies[0]!.text)).toMatch(/left my-app web\.7 alone: it is flapping/);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'heroku-restart', outcome: 'flapping' })).toBe(1);
    expect(await metricValue(h.metrics, 'mallet_firings_total', { outcome: 'flapping' })).toBe(1);
  });

  it('submit rejects with MALLET_STORE_UNAVAILABLE when Redis does not answer', async () => {
    h = createHarness('aq-down');
    const { Redis } = await import('ioredis');
    const dead = new Redis('redis://127.0.0.1:9', { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: () => 200 });
    const { ActionQueue } = await import('../../src/actions/queue.js');
    const { silentLogger } = await import('./harness.js');
    const q = new ActionQueue({ connection: dead, queuePrefix: h.queuePrefix, keys: h.keys, metrics: h.metrics, logger: silentLogger, dryRun: false, getLimits: () => h.limits, submitTimeoutMs: 300 });
    q.queue.on('error', () => {});
    await expect(q.submit([makeFiring({ actions: [h.stopAction()] })])).rejects.toMatchObject({ code: 'MALLET_STORE_UNAVAILABLE' });
    await Promise.race([q.close(), new Promise((r) => setTimeout(r, 500))]);
    dead.disconnect();
  });
});
