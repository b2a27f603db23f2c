import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { loadRulesText } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { explain, explainText } from '../../src/console/explain.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { ActionQueue } from '../../src/actions/queue.js';
import { readHistory } from '../../src/console/history.js';
import type { Firing } from '../../src/rules/Firing.js';

const RULES = `version: 1
rules:
  - name: web-leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 10 }
    actions: [ { type: redis-stop-key } ]
`;
const UUID = '1f6a6b9e-8e4c-4c6b-9d0e-0a3b5c7d9e11';
const T0 = Date.UTC(2024, 10, 14, 3, 0, 0);
const sample = (i: number, mb: number): DrainEvent => ({
  app: 'shop', id: `d.x:f:${i}`, receivedAt: T0 + i * 20_000, timestamp: new Date(T0 + i * 20_000).toISOString(), source: 'heroku', process: 'web.1',
  message: `source=web.1 dyno=heroku.2345678.${UUID} sample#memory_total=${mb.toFixed(2)}MB sample#memory_quota=512.00MB`,
});

let redis: Redis;
const prefix = uniquePrefix('expred');
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, prefix); await redis.quit(); });

describe('explain: a predict rule says what its line forecasts', () => {
  it('too few samples, then not yet, then in cooldown after the predictive firing', async () => {
    const loaded = loadRulesText(RULES, 'rules.yml', {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const keys = redisKeys(prefix);
    const engine = new RulesEngine({ redis, keys, metrics: createMetrics(undefined, { defaults: false }), logger: pino({ level: 'silent' }), getRuleSet: () => loaded.ruleSet });
    const q = { app: 'shop', rule: 'web-leak', target: 'web.1' };
    const ask = (i: number) => explain(redis, keys, loaded.ruleSet, [], q, T0 + i * 20_000 + 1000);

    expect((await ask(0)).summary).toBe('no sample of web.1 within the last 15m: nothing to fit (a predict rule needs 10 samples of one instance)');
    for (let i = 0; i < 5; i++) await engine.evaluate([sample(i, 300 + i)]);
    expect((await ask(4)).summary).toBe(`5 of 10 samples within 15m (instance ${UUID}, last sample at 03:01:20): too few to fit a line`);

    for (let i = 5; i < 100; i++) expect(await engine.evaluate([sample(i, 300 + i)])).toEqual([]);
    const e = await ask(99);
    expect(e.verdict).toBe('counting');
    expect(e.prediction?.last).toMatchObject({ instance: UUID, answer: { status: 'below', samples: 45 } });
    expect(e.summary).toBe(`45 samples, 399 MB rising 180 MB/h (instance ${UUID}, last sample at 03:33:00): reaches 512 MB in 37m 40s, later than 30m: not yet`);
    expect(explainText(e)).toContain(`predict     45 samples, 399 MB rising 180 MB/h`);

    const fired: unknown[] = [];
    for (let i = 100; i < 125; i++) fired.push(...await engine.evaluate([sample(i, 300 + i)]));
    expect(fired).toHaveLength(1);
    const after = await ask(124);
    expect(after.verdict).toBe('cooldown');
    expect(after.prediction?.last?.answer.status).toBe('reaches');
    expect(after.recent.map((r) => r.outcome)).toEqual(['cooldown']);
  });

  it('the history record of a predictive firing, and the job, carry the forecast', async () => {
    const loaded = loadRulesText(RULES, 'rules.yml', {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const p = uniquePrefix('exphist');
    const keys = redisKeys(p);
    const logger = pino({ level: 'silent' });
    const metrics = createMetrics(undefined, { defaults: false });
    const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet });
    let now = T0;
    const queue = new ActionQueue({ connection: redis, queuePrefix: `${p}:bull`, keys, metrics, logger, dryRun: false, getLimits: () => loaded.ruleSet.limits, clock: () => now });
    try {
      const fired: Firing[] = [];
      for (let i = 0; i < 125; i++) {
        now = T0 + i * 20_000;
        const f = await engine.evaluate([sample(i, 300 + i)]);
        await queue.submit(f);
        fired.push(...f);
      }
      expect(fired.map((f) => f.prediction)).toEqual(['web.1 reaches 512 MB in ~30 min at 180 MB/h']);
      const job = await queue.queue.getJob(fired[0]!.id);
      expect(job!.data.prediction).toBe('web.1 reaches 512 MB in ~30 min at 180 MB/h');
      const { records } = await readHistory(redis, keys, { app: 'shop', rule: 'web-leak', limit: 10 });
      const enqueued = records.find((r) => r.outcome === 'enqueued');
      expect(enqueued).toMatchObject({ target: 'web.1', prediction: 'web.1 reaches 512 MB in ~30 min at 180 MB/h' });
      expect(enqueued!.line).toContain('sample#memory_total=422.00MB');
      const e = await explain(redis, keys, loaded.ruleSet, [], { app: 'shop', rule: 'web-leak', target: 'web.1' }, now + 1000);
      expect(explainText(e)).toMatch(/enqueued .*web\.1 reaches 512 MB in ~30 min at 180 MB\/h/);
    } finally {
      await queue.close();
      await cleanupPrefix(redis, p);
    }
  });
});
