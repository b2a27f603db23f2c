import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Pipeline } from '../../src/server/pipeline.js';
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
import { countingRedis } from '../support/countingRedis.js';

/**
 * A body whose lines a predict rule samples, or whose votes are judged by the dyno lifecycle
 * (grace, instance, a restart's fresh window), still makes one Redis round trip: the predictions
 * and the lifecycle read are parts of the body script, and a vote waits on them inside it.
 */
const admin = testRedis();
const prefix = uniquePrefix('trips-pred');
afterAll(async () => { await cleanupPrefix(admin, prefix); admin.disconnect(); });

const loaded = loadRulesText(`version: 1
rules:
  - name: leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 3 }
    actions: [ { type: redis-stop-key } ]
  - name: r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 10m }
    grace: { after_start: 2m }
    actions: [ { type: redis-stop-key } ]
`, 'rules.yml', {});
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;


function setup(sink: FiringSink) {
  const conn = countingRedis(['info', 'sadd']);
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const keys = redisKeys(prefix);
  // As service.ts wires them: the observer writes the lifecycle, the rules read it.
  const life = new RedisLifeStore(conn.redis, keys);
  const engine = new RulesEngine({ redis: conn.redis, keys, metrics, logger, getRuleSet: () => ruleSet, life });
  const pipeline = new Pipeline({ redis: conn.redis, keys, engine, sink, observers: [new DynoObserver(new RedisDynoStore(conn.redis, keys), undefined, life)], metrics, logger });
  return { ...conn, pipeline, metrics, keys };
}

const UUID = '0ad3ad41-1c6b-4d5b-9f43-4bd1d0c3e0a1';
const T0 = Date.now() - 30 * 60_000;
const ts = (s: number) => new Date(T0 + s * 1000).toISOString().replace('Z', '+00:00');
const sample = (s: number, mb: number) => drainLine('heroku', 'web.1', `source=web.1 dyno=heroku.54241834.${UUID} sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${mb.toFixed(2)}MB sample#memory_quota=512.00MB`, ts(s));
const batchOf = (app: string, frameId: string, body: Buffer) => ({ app, drainToken: 'd.1', frameId, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });

// A body that fired: its script, then (after the firings are stored) the observers' writes told
// the firings and the frame mark in one more call.
const FIRED = ['evalsha', 'evalsha'];

async function warm(s: ReturnType<typeof setup>): Promise<void> {
  if (s.redis.status !== 'ready') await new Promise((r) => s.redis.once('ready', r));
  await s.pipeline.ingest(batchOf('warm-app', `W${Math.random()}`, frame(drainLine('app', 'web.9', 'hello'))));
  s.reset();
}

describe('one round trip per body, predictions and lifecycle included', () => {
  it('samples a predict rule matched (few, below, then reaching the quota): one command per body, and the firing names its prediction and instance', async () => {
    const fired: Firing[] = [];
    const s = setup({ async submit(f) { fired.push(...f); return f.map(() => 'enqueued' as const); } });
    await warm(s);
    // Too few samples, then a flat series: predicted on, not voted.
    for (let i = 0; i < 4; i++) {
      expect(await s.pipeline.ingest(batchOf('pred-app', `P${i}`, frame(sample(i * 20, 300))))).toEqual({ duplicate: false, lines: 1, firings: 0 });
      expect(s.commands()).toEqual(['evalsha']);
      s.reset();
    }
    expect(await admin.zcard(s.keys.predict('leak', 'pred-app', 'web.1').points)).toBe(4);
    expect(await admin.exists(s.keys.threshold('leak', 'pred-app', 'web.1').window)).toBe(0);
    // Rising fast: the next samples reach 512 MB within 30 minutes; the firing is stored, then the frame marked.
    const body = frame(sample(80, 400), sample(100, 470), sample(120, 500));
    expect(await s.pipeline.ingest(batchOf('pred-app', 'P9', body))).toEqual({ duplicate: false, lines: 3, firings: 1 });
    // A body that fired: the script, then (once its firing is stored) the observers' writes,
    // told the firing (trends, lifecycle), and the frame marked.
    expect(s.commands()).toEqual(FIRED);
    expect(fired).toHaveLength(1);
    expect(fired[0]!.prediction).toMatch(/^web\.1 reaches 512 MB /);
    expect(fired[0]!.actions[0]).toMatchObject({ type: 'redis-stop-key', instance: UUID });
    s.reset();
    // A retry is skipped whole, in one command.
    expect((await s.pipeline.ingest(batchOf('pred-app', 'P9', body))).duplicate).toBe(true);
    expect(s.commands()).toEqual(['evalsha']);
    expect(fired).toHaveLength(1);
    s.redis.disconnect();
  });

  it('R14s judged by the lifecycle (a restart in the same body, then the running instance): one command per body', async () => {
    const fired: Firing[] = [];
    const s = setup({ async submit(f) { fired.push(...f); return f.map(() => 'enqueued' as const); } });
    await warm(s);
    await s.pipeline.ingest(batchOf('life-app', 'L1', frame(sample(0, 300), sample(20, 300))));
    expect(s.commands()).toEqual(['evalsha']);
    s.reset();
    // The start line and R14s in one body: inside the start grace, read and judged in the script.
    const boot = frame(drainLine('heroku', 'web.1', 'Starting process with command `bundle exec puma`', ts(60)), drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', ts(90)), drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', ts(100)));
    expect(await s.pipeline.ingest(batchOf('life-app', 'L2', boot))).toEqual({ duplicate: false, lines: 3, firings: 0 });
    expect(s.commands()).toEqual(['evalsha']);
    const { values } = await s.metrics.firingsTotal.get();
    expect(values.find((v) => v.labels.rule === 'r14' && v.labels.outcome === 'grace')?.value).toBe(2);
    s.reset();
    // Past the grace, a sample of the new instance and two R14s: attributed to it, and fired.
    const late = frame(sample(300, 300), drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', ts(310)), drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', ts(320)));
    expect(await s.pipeline.ingest(batchOf('life-app', 'L3', late))).toEqual({ duplicate: false, lines: 3, firings: 1 });
    expect(s.commands()).toEqual(FIRED);
    expect(fired.map((f) => f.rule)).toEqual(['r14']);
    expect(fired[0]!.actions[0]).toMatchObject({ type: 'redis-stop-key', instance: UUID });
    s.redis.disconnect();
  });
});
