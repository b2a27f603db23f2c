import { afterEach, describe, expect, it } from 'vitest';
import { startOwnRedisServer, type OwnRedisServer } from '../support/ownRedisServer.js';
import { Redis } from 'ioredis';
import { consumeStopKeys, createHarness, jobLogs, makeFiring, settled, startWebhook, type Harness } from './harness.js';

let h: Harness;
let appRedis: OwnRedisServer | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await appRedis?.stop();
  await h.close();
});

describe('a hung app Redis', () => {
  it('a stop-key step on a frozen (SIGSTOPped) app Redis times out, fails and retries like any failure, then releases its rolling slot', async () => {
    h = createHarness('hang');
    appRedis = await startOwnRedisServer();
    const hook = await startWebhook();
    closers.push(hook.close);
    const queue = h.queue({ attempts: 2 });
    h.worker({ env: { APP_REDIS: appRedis.url, HOOK_URL: hook.url }, getAppRedisRef: () => '${APP_REDIS}' });
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    appRedis.freeze();
    await queue.submit([firing]);

    // Without command timeouts the SET would wait for ever and the job stay active, holding the slot.
    const { state, job } = await settled(queue, firing.id, 40_000);
    expect(state).toBe('failed');
    expect(job.failedReason).toMatch(/^step 1 redis-stop-key: Command timed out \(no attempts left\)$/);
    const logs = await jobLogs(queue, firing.id);
    expect(logs).toContain('step 1 redis-stop-key: failed, will retry: Command timed out');
    expect(logs).toContain('step 1 redis-stop-key: failed, no attempts left: Command timed out');
    expect(await h.redis.zcard(h.keys.rolling('my-app', 'web'))).toBe(0);
    // The operator is told.
    for (let i = 0; i < 200 && hook.bodies.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(String(hook.bodies[0]?.text)).toContain('mallet could not remediate my-app web.1');

    // The next remediation of the same process type gets the slot and, with Redis back, runs.
    appRedis.thaw();
    const pluginConn = new Redis(appRedis.url);
    const plugin = consumeStopKeys(pluginConn, h.prefix);
    closers.push(async () => { plugin.stop(); pluginConn.disconnect(); });
    const next = makeFiring({ target: 'web.2', actions: [h.stopAction('web.2')] });
    await queue.submit([next]);
    expect((await settled(queue, next.id, 20_000)).state).toBe('completed');
    expect(plugin.taken.get(h.stopKey('web.2'))).toBe('1');
  }, 90_000);
});
