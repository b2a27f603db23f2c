import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/keys.js';
import { RedisTargetBudget } from '../../src/rules/targetBudget.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { lifeBatchOf } from '../../src/dynos/instanceLife.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { BodyScript, callBodyScript, encodeBody } from '../../src/server/bodyScript.js';
import { RedisPredictStore, predictPart, type PredictResult, type PredictVote } from '../../src/rules/predictScript.js';
import { asBodyAnswer, bodyPredictAnswer } from '../support/predictAnswers.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { createMetrics } from '../../src/metrics.js';
import { pino } from 'pino';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { webR14Rules } from '../support/realPipeline.js';
import { drainLine, frame } from '../support/drainClient.js';
import { startOwnRedisServer, type OwnRedisServer } from '../support/ownRedisServer.js';

/**
 * What one delivery costs inside Redis does not grow per target, dyno or instance where one
 * command can do the work of many (each redis.call costs a few µs of Redis's one thread beyond
 * the command itself): the target budget reads every target's score in one ZMSCORE and writes
 * the admitted ones in one ZADD; the lifecycle write reads and writes its hash fields in one
 * HMGET and one HSET and raises the dynos' index in one ZADD GT; the memory trend write does the
 * same for its series' meta. Counted with INFO commandstats on a redis-server of the test's own
 * (a script's commands are counted there one by one). And the body script reads its parts'
 * descriptors alike in both widths it writes them in.
 */
let server: OwnRedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startOwnRedisServer();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

async function commandsOf(run: () => Promise<unknown>): Promise<Record<string, number>> {
  await redis.config('RESETSTAT');
  await run();
  const info = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

const keys = redisKeys('work');
const T0 = Date.UTC(2026, 11, 2, 4, 0, 0);

describe('the body script work per delivery', () => {
  it('the target budget: one ZMSCORE and one ZADD for 12 targets, the same answers as one at a time', async () => {
    const budget = new RedisTargetBudget(redis, (app) => keys.appTargets(app), { maxTargets: 8, windowMs: 60_000 });
    await budget.admit('app-b', ['web.1', 'web.2'], T0);
    const targets = Array.from({ length: 12 }, (_, i) => `web.${i + 1}`);
    let answers: boolean[] = [];
    const calls = await commandsOf(async () => { answers = await budget.admit('app-b', [...targets, 'web.3', 'web.12'], T0 + 1000); });
    // In play first (web.1, web.2), then new ones while fewer than 8; a repeat gets its first answer.
    expect(answers).toEqual([true, true, true, true, true, true, true, true, false, false, false, false, true, false]);
    expect(calls.zmscore).toBe(1);
    expect(calls.zadd).toBe(1);
    expect(calls.zscore).toBeUndefined();
    expect(await redis.zcard(keys.appTargets('app-b'))).toBe(8);
    expect(Number(await redis.zscore(keys.appTargets('app-b'), 'web.1'))).toBe(T0 + 1000);
  });

  it('the lifecycle write: one HMGET, one HSET and one ZADD for 6 dynos, each field refreshed once', async () => {
    const life = new RedisLifeStore(redis, keys);
    const dynos = Array.from({ length: 6 }, (_, i) => `web.${i + 1}`);
    const uuid = (i: number) => `0000000${i}-aaaa-bbbb-cccc-dddddddddddd`;
    const calls = await commandsOf(() => life.write('app-l', {
      releases: [T0],
      starts: dynos.map((d, i) => [d, T0 + i] as const),
      samples: dynos.map((d, i) => [d, uuid(i), T0 + 20_000 + i] as const),
    }));
    expect(calls.hmget).toBe(1);
    expect(calls.hset).toBe(1);
    expect(calls.zadd).toBe(1);
    expect(calls.hget).toBeUndefined();
    expect(calls.zscore).toBeUndefined();
    expect(calls.pexpire).toBe(2);
    const read = await life.read('app-l', dynos);
    expect(read.releases).toEqual([T0]);
    expect(read.dynos.get('web.6')).toEqual({ starts: [T0 + 5], instances: [[uuid(5), T0 + 20_005, T0 + 20_005]] });
    // The index only rises: an older delivery of web.1 leaves its time alone.
    await life.write('app-l', { releases: [], starts: [['web.1', T0 - 5000]], samples: [] });
    expect(Number(await redis.zscore(keys.dynoLife('app-l').index, 'web.1'))).toBe(T0 + 20_000);
  });

  it('the memory trend write: one HMGET and one HSET of the meta and one ZADD of the instances for 4 instances', async () => {
    const store = new RedisDynoStore(redis, keys);
    const samples = Array.from({ length: 4 }, (_, i) => ({ dyno: `web.${i + 1}`, instance: `1111111${i}-aaaa-bbbb-cccc-dddddddddddd`, at: T0 + i, valueMb: 100 + i, limitMb: 512 }));
    await store.write('app-d', { samples, events: [] });
    const calls = await commandsOf(() => store.write('app-d', { samples: samples.map((s) => ({ ...s, at: s.at + 60_000, valueMb: s.valueMb + 10 })), events: [{ kind: 'release', dyno: '', at: T0, detail: 'v1' }, { kind: 'start', dyno: 'web.1', at: T0, detail: '' }] }));
    expect(calls.hmget).toBe(1);
    expect(calls.hset).toBe(1);
    expect(calls.hget).toBeUndefined();
    // One for the two events, one for the four instances' last times.
    expect(calls.zadd).toBe(2);
    const snap = await store.read('app-d');
    expect(snap.instances).toHaveLength(4);
    for (const s of snap.instances) expect(s.points.map(([, mb]) => mb)).toEqual([Number(s.dyno.slice(4)) + 99, Number(s.dyno.slice(4)) + 109]);
  });

  it("a storm's votes refresh each key's expiry once per body: as many PEXPIREs for 40 votes as for 2", async () => {
    const ruleSet = webR14Rules(1000);
    const k = redisKeys('work-storm');
    const engine = new RulesEngine({ redis, keys: k, metrics: createMetrics(undefined, { defaults: false }), logger: pino({ level: 'silent' }), getRuleSet: () => ruleSet });
    const script = new BodyScript(redis);
    const run = async (b: number, votes: number) => {
      const lines = Array.from({ length: votes }, (_, i) => drainLine('heroku', `web.${1 + (i % 2)}`, 'Error R14 (Memory quota exceeded)', `2026-12-02T04:0${b}:00.${String(i).padStart(6, '0')}+00:00`));
      const events = drainEvents({ app: 'app-s', drainToken: 'd.1', frameId: `S${b}`, dedupe: true, receivedAt: T0 + b, messages: parseLogplexBody(frame(...lines)).messages });
      const body = engine.prepareBody(events);
      const reply = await script.run(k.recentFrames('app-s', 'd.1'), `S${b}`, T0 + b, true, body.parts);
      expect(reply.status).toBe('marked');
      return reply;
    };
    const two = await commandsOf(() => run(1, 2));
    const forty = await commandsOf(() => run(2, 40));
    // Per target its window and lines, the app's stats bucket, the budget and the frames: 7.
    expect(two.pexpire).toBe(7);
    expect(forty.pexpire).toBe(7);
    expect(forty.zadd).toBeGreaterThanOrEqual(40);
    const window = k.threshold('r14', 'app-s', 'web.1').window;
    expect(await redis.zcard(window)).toBe(21);
    const ttl = await redis.pttl(window);
    expect(ttl).toBeGreaterThan(5 * 60_000);
    expect(ttl).toBeLessThanOrEqual(6 * 60_000);
    expect(await redis.pttl(k.threshold('r14', 'app-s', 'web.2').lines)).toBeGreaterThan(5 * 60_000);
  });

  it("a body's predict samples refresh their target's two keys' expiry once, to what the standalone script leaves", async () => {
    const vote = (k: ReturnType<typeof redisKeys>, i: number): PredictVote => ({
      keys: k.predict('leak', 'app-p', 'web.1'), eventId: `e${i}`, time: T0 + 20_000 * i, value: 100 + i, limit: 512,
      withinMs: 3_600_000, overMs: 1_800_000, minSamples: 3, instance: 'aaaa-1',
    });
    const own = redisKeys('work-predict-own');
    const viaBody = redisKeys('work-predict-body');
    const votes = (k: ReturnType<typeof redisKeys>) => Array.from({ length: 6 }, (_, i) => vote(k, i));
    let answers: unknown[] = [];
    const alone = await commandsOf(async () => { answers = await new RedisPredictStore(redis).predict(votes(own)); });
    expect(alone.pexpire).toBe(12);
    const call = encodeBody(viaBody.recentFrames('app-p', 'd.1'), '', T0, false, votes(viaBody).map(predictPart));
    let reply: unknown[] = [];
    const body = await commandsOf(async () => { reply = await callBodyScript(redis, call); });
    // Six samples of one target: its points and state keys once each (no frame: no frames key).
    expect(body.pexpire).toBe(2);
    expect(reply.slice(1).map(bodyPredictAnswer)).toEqual((answers as PredictResult[]).map(asBodyAnswer));
    expect(answers.map((a) => (a as { status: string }).status)).toEqual(['few', 'few', 'below', 'below', 'below', 'below']);
    for (const key of ['points', 'state'] as const) {
      const a = await redis.pttl(own.predict('leak', 'app-p', 'web.1')[key]);
      const b = await redis.pttl(viaBody.predict('leak', 'app-p', 'web.1')[key]);
      expect(b).toBeGreaterThan(1_800_000 + 59_000);
      expect(b).toBeLessThanOrEqual(1_800_000 + 60_000);
      expect(Math.abs(a - b)).toBeLessThan(2_000);
    }
    expect(await redis.hgetallBuffer(viaBody.predict('leak', 'app-p', 'web.1').state)).toEqual(await redis.hgetallBuffer(own.predict('leak', 'app-p', 'web.1').state));
  });

  it('a part of thousands of indices in 2-character descriptors (read in slices) writes what its own script writes', async () => {
    const uuid = (i: number) => `2222222${i}-aaaa-bbbb-cccc-dddddddddddd`;
    const samples = Array.from({ length: 1500 }, (_, i) => ({ dyno: `web.${1 + (i % 3)}`, instance: uuid(i % 3), at: T0 + 1000 * i, valueMb: 100 }));
    const events = [{ kind: 'release', dyno: '', at: T0, detail: 'v7' }, { kind: 'start', dyno: 'web.1', at: T0, detail: '' }] as const;
    const own = redisKeys('work-life-own');
    await new RedisLifeStore(redis, own).write('app-x', lifeBatchOf(samples, events));
    const viaBody = redisKeys('work-life-body');
    // The dyno observer's path: the part made from its records.
    const part = new RedisLifeStore(redis, viaBody).recordsPart('app-x', samples, events)!;
    const call = encodeBody(viaBody.recentFrames('app-x', 'd.1'), '', T0, false, [part]);
    // Over 3 000 indices for fewer than 4 096 distinct keys and values: two characters each.
    expect(String(call[call.length - 1]).length).toBeGreaterThan(6000);
    expect(String(call[call.length - 1]).charAt(1)).toBe('2');
    await callBodyScript(redis, call);
    expect(await redis.hgetall(viaBody.dynoLife('app-x').life)).toEqual(await redis.hgetall(own.dynoLife('app-x').life));
    expect(await redis.zrange(viaBody.dynoLife('app-x').index, '0', '-1', 'WITHSCORES')).toEqual(await redis.zrange(own.dynoLife('app-x').index, '0', '-1', 'WITHSCORES'));
  });

  it('descriptors of 3- and 4-character numbers (bodies of thousands, a quarter of a million values) read as those of 2', async () => {
    const ruleSet = webR14Rules(3);
    const logger = pino({ level: 'silent' });
    const replies: unknown[][] = [];
    for (const width of [2, 3, 4] as const) {
      const k = redisKeys(`work-w${width}`);
      const engine = new RulesEngine({ redis, keys: k, metrics: createMetrics(undefined, { defaults: false }), logger, getRuleSet: () => ruleSet });
      for (let b = 0; b < 2; b++) {
        const lines = [1, 2, 3].map((i) => drainLine('heroku', `web.${i}`, 'Error R14 (Memory quota exceeded)', `2026-12-02T04:00:0${b}.00000${i}+00:00`));
        lines.push(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', `2026-12-02T04:00:0${b}.000009+00:00`));
        const events = drainEvents({ app: 'app-w', drainToken: 'd.1', frameId: `F${b}`, dedupe: true, receivedAt: T0 + b, messages: parseLogplexBody(frame(...lines)).messages });
        const body = engine.prepareBody(events);
        const call = encodeBody(k.recentFrames('app-w', 'd.1'), `F${b}`, T0 + b, true, body.parts, width);
        expect(String(call[call.length - 1]).charAt(1)).toBe(String(width));
        replies.push(await callBodyScript(redis, call));
      }
    }
    expect(replies[2]).toEqual(replies[0]);
    expect(replies[3]).toEqual(replies[1]);
    expect(replies[4]).toEqual(replies[0]);
    expect(replies[5]).toEqual(replies[1]);
    // The second body's two web.1 lines complete web.1's window: it fired, so the frame is left open.
    expect(replies[1]![0]).toBe('open');
  });
});
