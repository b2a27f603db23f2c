import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { startRealDrain, type RealDrain } from '../support/realDrain.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { RECENT_FRAMES } from '../../src/server/recentFrames.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';

/**
 * Issue #8 item 3: every accepted body left a frame done-marker in Redis for a day, so Redis grew
 * with traffic. De-duplication now costs a bounded amount per drain, whatever the traffic; a
 * retried frame is still skipped whole. Real HTTP, the real pipeline on real Redis.
 */
const PASSWORD = 'drain-secret-123';
const TOKEN = 'd.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc';
let drain: RealDrain;
beforeAll(async () => {
  drain = await startRealDrain({
    password: PASSWORD,
    rules: `version: 1
rules:
  - name: r14
    match: { message: '^Error R14 ' }
    threshold: { count: 2, within: 5m }
    actions: [ { type: redis-stop-key } ]
`,
  });
});
afterAll(async () => { await drain.close(); });

async function keysUnder(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await drain.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

async function memoryOf(keys: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const k of keys) bytes += Number(await drain.redis.memory('USAGE', k, 'SAMPLES', '0') ?? 0);
  return bytes;
}

const lines = async () => (await drain.metrics.linesTotal.get()).values.reduce((a, v) => a + v.value, 0);

describe('Redis grows with traffic: frame de-duplication', () => {
  it('200 bodies over HTTP leave one bounded key for their drain, and a retry is still skipped whole', async () => {
    const body = frame(drainLine('heroku', 'web.1', 'State changed from up to down'), drainLine('app', 'web.1', 'hello'));
    for (let i = 0; i < 200; i++) {
      const res = await postDrain(drain.url, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': TOKEN, 'Logplex-Frame-Id': `GROW${i}` } });
      expect(res.status).toBe(204);
    }
    const frameKeys = await keysUnder(`${drain.prefix}:frames:`);
    expect(frameKeys).toHaveLength(1);
    expect(await drain.redis.zcard(frameKeys[0]!)).toBe(RECENT_FRAMES.maxFrames);
    // Kept in Redis's compact encoding: a few KiB whatever the number of bodies.
    expect(await drain.redis.object('ENCODING', frameKeys[0]!)).toBe('listpack');
    expect(await memoryOf(frameKeys)).toBeLessThan(16 * 1024);
    // The last frame retried (logplex: same drain token and frame id) is skipped whole.
    const before = await lines();
    const retry = await postDrain(drain.url, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': TOKEN, 'Logplex-Frame-Id': 'GROW199' } });
    expect(retry.status).toBe(204);
    expect(await lines()).toBe(before);
    // The drain key expires when the drain goes quiet.
    const ttl = await drain.redis.pttl(frameKeys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(RECENT_FRAMES.windowMs);
  });

  it('2 000 bodies over 4 drains straight into the pipeline: 4 keys, a few KiB each, retries of recent frames skipped', async () => {
    const pipeline = new Pipeline({
      redis: drain.redis, keys: drain.keys, metrics: drain.metrics, logger: (await import('pino')).pino({ level: 'silent' }),
      engine: { async judge() { return { firings: [], count() {} }; } },
      sink: { async submit() { return []; } },
    });
    const messages = parseLogplexBody(frame(drainLine('app', 'web.1', 'hello'))).messages;
    const drains = ['d.00000000-0000-0000-0000-00000000000a', 'd.00000000-0000-0000-0000-00000000000b', 'd.00000000-0000-0000-0000-00000000000c', 'd.00000000-0000-0000-0000-00000000000d'];
    const perDrain = 500;
    await Promise.all(drains.map(async (drainToken) => {
      for (let i = 0; i < perDrain; i++) {
        const r = await pipeline.ingest({ app: 'busy-app', drainToken, frameId: `F${i.toString(16).padStart(8, '0')}`, dedupe: true, receivedAt: Date.now(), messages });
        expect(r.duplicate).toBe(false);
      }
    }));
    const frameKeys = await keysUnder(`${drain.prefix}:frames:{busy-app}:`);
    expect(frameKeys).toHaveLength(4);
    expect(await memoryOf(frameKeys)).toBeLessThan(4 * 16 * 1024);
    for (const drainToken of drains) {
      const r = await pipeline.ingest({ app: 'busy-app', drainToken, frameId: `F${(perDrain - 1).toString(16).padStart(8, '0')}`, dedupe: true, receivedAt: Date.now(), messages });
      expect(r.duplicate).toBe(true);
    }
  });
});
