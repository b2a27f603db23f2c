import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { loadRulesText, type CompiledRuleSet } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { DryEvaluator } from '../../src/rules/dryRun.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import type { Firing } from '../../src/rules/Firing.js';
import { stopKeyValue } from '../../src/rules/instance.js';

const RULES = `
version: 1
rules:
  - name: web-leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 10 }
    actions:
      - { type: redis-stop-key }
      - { type: notify, url: "\${HOOK}" }
  - name: worker-leak
    match: { process: "worker-*" }
    predict: { value: "sample#memory_total", reaches: "1GB", within: 1h, over: 30m, min_samples: 5 }
    actions: [ { type: redis-stop-key } ]
`;

function rules(): CompiledRuleSet {
  const r = loadRulesText(RULES, 'rules.yml', { HOOK: 'https://hooks.example.test/x' });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.ruleSet;
}

const UUID_A = '1f6a6b9e-8e4c-4c6b-9d0e-0a3b5c7d9e11';
const UUID_B = '2a7b7cae-9f5d-4d7c-8e1f-1b4c6d8e0f22';
const T0 = Date.UTC(2024, 10, 14, 10, 0, 0);
let seq = 0;

/** A Cedar runtime-metrics line of `dyno` (instance `uuid`) at `at`, `mb` of a 512 MB quota. */
function sample(mb: number, at: number, opts: { dyno?: string; uuid?: string; id?: string; quota?: number } = {}): DrainEvent {
  const dyno = opts.dyno ?? 'web.1';
  return {
    app: 'acme-shop', id: opts.id ?? `d.test:pred:${++seq}`, receivedAt: at,
    timestamp: new Date(at).toISOString().replace('Z', '+00:00'), source: 'heroku', process: dyno,
    message: `source=${dyno} dyno=heroku.2345678.${opts.uuid ?? UUID_A} sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${(mb * 0.9).toFixed(2)}MB sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=0pages sample#memory_pgpgout=0pages sample#memory_quota=${(opts.quota ?? 512).toFixed(2)}MB`,
  };
}

/** A Fir memory line as the OTLP receiver writes it (firEvents.ts): the dyno name is the instance. */
function firSample(dyno: string, mb: number, at: number): DrainEvent {
  return {
    app: 'acme-shop', id: `d.test:pred:${++seq}`, receivedAt: at,
    timestamp: new Date(at).toISOString().replace('Z', '+00:00'), source: 'heroku', process: dyno,
    message: `source=${dyno} dyno=${dyno} sample#memory_total=${mb.toFixed(2)}MB sample#memory_quota=1024.00MB`,
  };
}

/** Samples every 20 s from T0: `mb(i)` for i = 0..n-1. */
function series(n: number, mb: (i: number) => number, opts: Parameters<typeof sample>[2] = {}): DrainEvent[] {
  return Array.from({ length: n }, (_, i) => sample(mb(i), T0 + i * 20_000, opts));
}

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

type Judge = (events: DrainEvent[]) => Promise<Firing[]>;

/** The service's engine on real Redis, and the dry evaluator of `mallet test` / `replay`, side by side. */
function judges(): [string, () => { judge: Judge; metrics?: ReturnType<typeof createMetrics> }][] {
  return [
    ['redis', () => {
      const prefix = uniquePrefix('pred');
      prefixes.push(prefix);
      const metrics = createMetrics(undefined, { defaults: false });
      const ruleSet = rules();
      const e = new RulesEngine({ redis, keys: redisKeys(prefix), metrics, logger: pino({ level: 'silent' }), getRuleSet: () => ruleSet, clock: (ev) => ev.receivedAt });
      return { judge: (events) => e.evaluate(events), metrics };
    }],
    ['memory', () => {
      const dry = new DryEvaluator(rules());
      return { judge: async (events) => (await dry.evaluate(events)).firings };
    }],
  ];
}

/** Each event as its own body, as 20-second samples arrive; the firings in order. */
async function feed(judge: Judge, events: DrainEvent[]): Promise<{ firing: Firing; index: number }[]> {
  const out: { firing: Firing; index: number }[] = [];
  for (const [index, e] of events.entries()) for (const firing of await judge([e])) out.push({ firing, index });
  return out;
}

describe.each(judges())('predict: (%s)', (_name, make) => {
  it('fires for a rising series, at the sample whose line reaches the quota within 30 minutes, naming the instance', async () => {
    const { judge } = make();
    // 300 MB rising 1 MB per sample (180 MB/h): 512 MB is 70 min away at first, 30 min away at
    // 300 + 212 - 90 = sample 122 (the fit is exact on a straight line).
    const fired = await feed(judge, series(140, (i) => 300 + i));
    expect(fired.map((f) => f.index)).toEqual([122]);
    const f = fired[0]!.firing;
    expect(f).toMatchObject({ rule: 'web-leak', target: 'web.1', processType: 'web', prediction: 'web.1 reaches 512 MB in ~30 min at 180 MB/h' });
    expect(f.triggerLines[0]).toContain('sample#memory_total=422.00MB');
    const stop = f.actions[0]!;
    expect(stop).toMatchObject({ type: 'redis-stop-key', key: 'puma::stop::web.1', instance: UUID_A });
    expect(stop.type === 'redis-stop-key' && stopKeyValue(stop.value, stop.instance)).toBe(`web-leak instance=${UUID_A}`);
    expect(f.actions[1]).toMatchObject({ type: 'notify', text: 'mallet: rule web-leak fired for acme-shop web.1: web.1 reaches 512 MB in ~30 min at 180 MB/h' });
  });

  it('does not fire for a flat series, however close to the quota', async () => {
    const { judge } = make();
    expect(await feed(judge, series(100, (i) => 500 + (i % 2 === 0 ? 0.5 : -0.5)))).toEqual([]);
    expect(await feed(judge, series(60, () => 511.37, { dyno: 'web.2' }))).toEqual([]);
    // At the quota and not growing: R14 is the threshold rules' business, not a prediction.
    expect(await feed(judge, series(60, () => 512, { dyno: 'web.3' }))).toEqual([]);
  });

  it('does not fire before min_samples, even on a steep climb', async () => {
    const { judge } = make();
    // 10 MB per sample (1800 MB/h): from the second sample on, the line reaches 512 MB in minutes.
    const fired = await feed(judge, series(12, (i) => 100 + 10 * i));
    expect(fired.map((f) => f.index)).toEqual([9]);
    expect(fired[0]!.firing.prediction).toBe('web.1 reaches 512 MB in ~11 min at 1800 MB/h');
  });

  it('fits one instance at a time: a preboot overlap of two web.1 does not mix them', async () => {
    const { judge } = make();
    // The old instance climbs; the new one is flat and low. Mixed, the two would zig-zag; apart,
    // only the old one fires, and the stop key names it.
    const events: DrainEvent[] = [];
    for (let i = 0; i < 30; i++) {
      events.push(sample(420 + 2 * i, T0 + i * 20_000, { uuid: UUID_A }));
      events.push(sample(150, T0 + i * 20_000 + 5000, { uuid: UUID_B }));
    }
    const fired = await feed(judge, events);
    expect(fired.length).toBe(1);
    expect(fired[0]!.firing.actions[0]).toMatchObject({ instance: UUID_A });
    expect(fired[0]!.firing.triggerLines[0]).toContain(UUID_A);
  });

  it('an absolute limit, and a Fir dyno name as the instance', async () => {
    const { judge } = make();
    const events = Array.from({ length: 30 }, (_, i) => firSample('worker-5d9c8b7f6-q2x4z', 700 + 10 * i, T0 + i * 60_000));
    const fired = await feed(judge, events);
    // 600 MB/h, 1024 MB under an hour away: fires at min_samples, then after each 10-minute cooldown.
    expect(fired.map((f) => f.index)).toEqual([4, 14, 24]);
    expect(fired[0]!.firing).toMatchObject({ rule: 'worker-leak', target: 'worker-5d9c8b7f6-q2x4z', prediction: 'worker-5d9c8b7f6-q2x4z reaches 1024 MB in ~28 min at 600 MB/h' });
    // The name already is the instance: no instance= is added (that is the uuid of a Cedar line).
    expect(fired[0]!.firing.actions[0]).not.toHaveProperty('instance');
  });

  it('cools down like any rule, and a retried sample adds nothing and gets its firing back', async () => {
    const { judge, metrics } = make();
    const events = series(200, (i) => 300 + i);
    const fired = await feed(judge, events.slice(0, 125));
    expect(fired.map((f) => f.index)).toEqual([122]);
    // Delivered again (a logplex retry of the firing body): the same firing, not a new one.
    const again = await judge([events[122]!]);
    expect(again.map((f) => f.id)).toEqual([fired[0]!.firing.id]);
    // Inside the 10-minute cooldown the predicting samples are cooldowns; after it, it fires again.
    const later = await feed(judge, events.slice(125, 160));
    expect(later.map((f) => f.index + 125)).toEqual([152]);
    if (metrics) {
      const m = await metrics.firingsTotal.get();
      expect(m.values.find((v) => v.labels.outcome === 'cooldown' && v.labels.rule === 'web-leak')?.value).toBe((152 - 123) + (160 - 153));
    }
  });
});
