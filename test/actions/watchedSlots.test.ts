import { afterEach, describe, expect, it } from 'vitest';
import { createHarness, makeFiring, settled, type Harness } from './harness.js';
import type { ResolvedAction } from '../../src/rules/Firing.js';

let h: Harness;
afterEach(async () => { await h.close(); });

describe('stop keys watched until their TTL do not hold back other triggers', () => {
  it('six stop keys nobody takes are watched at once, and a seventh trigger writes its key while they are', async () => {
    h = createHarness('watch-slots');
    const queue = h.queue();
    // The default number of jobs at a time: the one the service runs.
    h.worker();
    // Six process types, so the rolling lease (one per process type) lets all six run; nobody
    // consumes these keys, so each step watches its key until the TTL, holding its job.
    const ttlMs = 8000;
    const keys = Array.from({ length: 6 }, (_, i) => `${h.prefix}:nobody::stop::t${i}.1`);
    const watched = keys.map((key, i) => {
      const action: ResolvedAction = { type: 'redis-stop-key', key, value: '1', ttlMs };
      return makeFiring({ target: `t${i}.1`, actions: [action] });
    });
    await queue.submit(watched);
    for (let i = 0; i < 200 && (await h.redis.exists(...keys)) < keys.length; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await h.redis.exists(...keys)).toBe(keys.length);
    const firstWritten = Date.now();
    const fresh = makeFiring({ target: 'web.1', actions: [h.stopAction('web.1')] });
    await queue.submit([fresh]);
    const { state } = await settled(queue, fresh.id, 20_000);
    expect(state).toBe('completed');
    // Taken by the stand-in plugin (puma::stop:: keys), so it was written; and while the six
    // were still watched: none of their jobs has ended.
    expect(h.taken.has(h.stopKey('web.1'))).toBe(true);
    expect(Date.now() - firstWritten).toBeLessThan(ttlMs);
    for (const f of watched) expect(await queue.queue.getJobState(f.id)).toBe('active');
  }, 40_000);
});
