import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Pipeline, type Evaluator } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import type { Firing, FiringSink } from '../../src/rules/Firing.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';

/**
 * The body script (one round trip: budget, predictions, lifecycle judgement and votes in Lua)
 * decides as judge() does (its own round trips, the lifecycle judged in TypeScript), body by
 * body, on random series: rising and falling memory of two instances of two dynos, restarts,
 * `starting to up`, releases and R14s, in bodies of random sizes, some delivered twice.
 */
let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

const loaded = loadRulesText(`version: 1
rules:
  - name: leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 3 }
    cooldown: 10m
    actions:
      - { type: redis-stop-key }
      - { type: notify, url: "\${HOOK_URL}", text: "{{prediction}}" }
  - name: r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 5m }
    cooldown: 5m
    grace: { after_start: 90s, after_release: 60s }
    actions: [ { type: redis-stop-key } ]
`, 'rules.yml', { HOOK_URL: 'https://hooks.example.test/x' });
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;

const UUIDS = ['4b88c98d-6243-4194-af49-8db9b53be371', 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c'];
const T0 = Date.UTC(2025, 2, 1, 10, 0, 0);
const ts = (ms: number) => new Date(ms).toISOString().replace('Z', '123+00:00');

type Step = { dt: number; dyno: number; instance: number; kind: 'sample' | 'r14' | 'start' | 'up' | 'release'; mb: number };
const step: fc.Arbitrary<Step> = fc.record({
  dt: fc.integer({ min: -5_000, max: 20_000 }),
  dyno: fc.integer({ min: 1, max: 2 }),
  instance: fc.constantFrom(0, 0, 0, 1),
  kind: fc.constantFrom<Step['kind']>('sample', 'sample', 'sample', 'r14', 'r14', 'start', 'up', 'release'),
  // The change since the instance's previous sample: mostly rising, so predictions reach the quota.
  mb: fc.integer({ min: -300, max: 1200 }).map((c) => c / 100),
});
const runs = fc.record({
  steps: fc.array(step, { minLength: 1, maxLength: 80, size: 'max' }),
  cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 60, maxLength: 60 }),
  retries: fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
});

function lineOf(s: Step, at: number, memory: Map<string, number>): string {
  const dyno = `web.${s.dyno}`;
  switch (s.kind) {
    case 'sample': {
      const id = `${dyno}/${s.instance}`;
      const mb = Math.max(100, (memory.get(id) ?? 420) + s.mb);
      memory.set(id, mb);
      return drainLine('heroku', dyno, `source=${dyno} dyno=heroku.54241834.${UUIDS[s.instance]} sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${mb.toFixed(2)}MB sample#memory_quota=512.00MB`, ts(at));
    }
    case 'r14': return drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)', ts(at));
    case 'start': return drainLine('heroku', dyno, 'Starting process with command `bundle exec puma`', ts(at));
    case 'up': return drainLine('heroku', dyno, 'State changed from starting to up', ts(at));
    case 'release': return drainLine('app', 'api', 'Release v42 created by user dev@example.test', ts(at));
  }
}

function side(prefix: string, judgedOnly: boolean) {
  const keys = redisKeys(prefix);
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const life = new RedisLifeStore(redis, keys);
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet, life });
  // Without prepareBody the pipeline judges with judge(): the reference.
  const evaluator: Evaluator = judgedOnly ? { judge: (e) => engine.judge(e) } : engine;
  const fired: ReturnType<typeof firingView>[] = [];
  const sink: FiringSink = { async submit(f) { fired.push(...f.map(firingView)); return f.map(() => 'enqueued' as const); } };
  const pipeline = new Pipeline({ redis, keys, engine: evaluator, sink, observers: [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)], metrics, logger });
  return { pipeline, metrics, fired };
}

/** What a firing says, without what differs by key prefix. */
const firingView = (f: Firing) => ({ id: f.id, target: f.target, window: f.window, triggerLines: f.triggerLines, actions: f.actions, prediction: f.prediction });

async function outcomes(metrics: ReturnType<typeof createMetrics>): Promise<string[]> {
  const { values } = await metrics.firingsTotal.get();
  return values.map((v) => `${v.labels.rule}/${v.labels.outcome}=${v.value}`).sort();
}

describe('the body script decides as judge()', () => {
  it('predictions, grace, instance attribution and restarts on random series', async () => {
    // What the runs covered, so the property cannot pass on series where nothing happens.
    const seen = { predicted: 0, r14: 0, instance: 0, grace: 0, cooldown: 0 };
    await fc.assert(fc.asyncProperty(runs, async ({ steps, cuts, retries }) => {
      const pa = uniquePrefix('bse-a');
      const pb = uniquePrefix('bse-b');
      prefixes.push(pa, pb);
      const script = side(pa, false);
      const judged = side(pb, true);
      let at = T0;
      const memory = new Map<string, number>();
      const lines = steps.map((s) => { at += s.dt; return { line: lineOf(s, at, memory), at }; });
      let b = 0;
      for (let i = 0; i < lines.length; b++) {
        const body = lines.slice(i, i + cuts[b % cuts.length]!);
        i += body.length;
        const receivedAt = Math.max(...body.map((l) => l.at)) + 3000;
        const bytes = frame(...body.map((l) => l.line));
        for (let n = 0; n < (retries[b % retries.length] ? 2 : 1); n++) {
          const batch = { app: 'eq-app', drainToken: 'd.1', frameId: `F${b}`, dedupe: true, receivedAt, messages: parseLogplexBody(bytes).messages };
          const [x, y] = [await script.pipeline.ingest(batch), await judged.pipeline.ingest(batch)];
          expect(x).toEqual(y);
        }
      }
      expect(script.fired).toEqual(judged.fired);
      const o = await outcomes(script.metrics);
      expect(o).toEqual(await outcomes(judged.metrics));
      // The history records (grace spells, cooldown windows, counts) alike too.
      const history = async (prefix: string) => (await redis.xrange(redisKeys(prefix).history('eq-app'), '-', '+')).map(([, fields]) => fields);
      expect(await history(pa)).toEqual(await history(pb));
      for (const f of script.fired) {
        if (f.prediction !== undefined) seen.predicted++;
        else seen.r14++;
        if (f.actions.some((a) => a.type === 'redis-stop-key' && a.instance !== undefined)) seen.instance++;
      }
      for (const line of o) {
        if (line.includes('/grace=')) seen.grace++;
        if (line.includes('/cooldown=')) seen.cooldown++;
      }
    }), { numRuns: 40 });
    console.log(JSON.stringify(seen));
    expect(seen.predicted).toBeGreaterThan(0);
    expect(seen.r14).toBeGreaterThan(0);
    expect(seen.instance).toBeGreaterThan(0);
    expect(seen.grace).toBeGreaterThan(0);
    expect(seen.cooldown).toBeGreaterThan(0);
  }, 240_000);
});
