import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { ACTION_QUEUE, redisKeys } from '../../src/keys.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { eventually } from '../support/eventually.js';
import { spawnMallet, type MalletProcess } from '../support/malletProcess.js';
import { uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';

/**
 * mallet on a real Redis Cluster (three masters): every multi-key script, transaction and
 * pipeline must stay inside one hash slot, or the cluster answers CROSSSLOT and the drain 503s.
 */
const PASSWORD = `cluster-${randomBytes(8).toString('hex')}`;
const seeds = () => {
  const url = process.env.MALLET_TEST_REDIS_CLUSTER_URL;
  if (!url) throw new Error('MALLET_TEST_REDIS_CLUSTER_URL is unset: run through npm run test:cluster');
  return url;
};
const prefix = uniquePrefix('cluster');
const queuePrefix = `{${prefix}-q}`;
let redis: Cluster;
const running: MalletProcess[] = [];
let urls: string[] = [];

beforeAll(async () => {
  redis = new Cluster(seeds().split(',').map((u) => ({ host: new URL(u).hostname, port: Number(new URL(u).port) })));
  const { file: rules } = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 5m }
    cooldown: 10m
    actions:
      - type: redis-stop-key
        key: "${prefix}-stop:{{target}}"
        ttl: 10m
`);
  const env = {
    PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD,
    REDIS_URL: seeds(), MALLET_REDIS_CLUSTER: '1', MALLET_RULES: rules, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix,
  };
  const a = spawnMallet(['serve'], { env });
  const b = spawnMallet(['serve'], { env });
  running.push(a, b);
  urls = [String((await a.waitForLog(/mallet is listening/, 90_000)).url), String((await b.waitForLog(/mallet is listening/, 90_000)).url)];
});

afterAll(async () => {
  for (const m of running) if (m.child.exitCode === null) { m.child.kill('SIGTERM'); await m.exited; }
  // Each master holds its own keys: SCAN every one.
  for (const node of redis?.nodes('master') ?? []) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of found) await node.del(k);
    } while (cursor !== '0');
  }
  await redis?.quit();
});

const token = 'd.11111111-2222-4333-8444-555555555555';
const r14 = (dyno: string) => frame(drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)'));
const post = (n: number, app: string, body: Buffer, frameId: string) =>
  postDrain(urls[n % 2]!, app, body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': frameId, 'Logplex-Drain-Token': token } });

describe('mallet on a 3-master Redis Cluster', () => {
  it('keeps the keys of each multi-key script in one slot, and spreads apps over the masters', async () => {
    const keys = redisKeys(prefix, queuePrefix);
    const slot = async (k: string) => Number(await redis.cluster('KEYSLOT', k));
    const same = async (...ks: string[]) => new Set(await Promise.all(ks.map(slot))).size;
    for (const app of ['my-app', 'other-app', 'x'.repeat(80)]) {
      const t = keys.threshold('puma-r14', app, 'web.1');
      const t2 = keys.threshold('other-rule', app, 'worker.3');
      // A body is one app: its whole threshold pipeline, its drain's recent frames and its target budget share a slot.
      const p = keys.predict('leak', app, 'web.1');
      // …with its predict rules' series and the dyno lifecycle its votes read (both parts of the body script).
      expect(await same(t.window, t.lines, t.firedBy, t.cooldown, t2.window, keys.recentFrames(app, token), keys.appTargets(app), p.points, p.state, keys.dynoLife(app).life, keys.dynoLife(app).index)).toBe(1);
      expect(await same(keys.stormGuard(app), keys.flapping(app, 'web.1'), keys.admission(app, 'fabc'))).toBe(1);
    }
    expect(await same(keys.jobSteps('f123'), `${queuePrefix}:${ACTION_QUEUE}:f123:lock`)).toBe(1);
    expect(await same(keys.herokuBudget('0123456789abcdef'), keys.herokuRemaining('0123456789abcdef'))).toBe(1);
    const apps = Array.from({ length: 30 }, (_, i) => keys.stormGuard(`app-${i}`));
    expect(await same(...apps)).toBeGreaterThan(10);
  });

  it('drain → threshold across two replicas → one firing → stop key written on the cluster', async () => {
    const run = randomBytes(4).toString('hex').toUpperCase();
    // Six R14 lines for web.1, alternating replicas, in pairs at once: count 3 fires once, then cooldown.
    for (let i = 0; i < 6; i += 2) {
      const res = await Promise.all([i, i + 1].map((n) => post(n, 'my-app', r14('web.1'), `F${run}${n}`)));
      expect(res.map((r) => r.status)).toEqual([204, 204]);
    }
    expect(await eventually('the stop key of web.1', async () => (await redis.getdel(`${prefix}-stop:web.1`)) ?? undefined, 20_000)).toBe('puma-r14');
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
    expect(jobs.map((j) => `${j.data.rule}/${j.data.app}/${j.data.target}`)).toEqual(['puma-r14/my-app/web.1']);
    await eventually('the job completed', async () => (await queue.getJob(jobs[0]!.id!))?.isCompleted(), 20_000);
    await queue.close();
  });

  it('a retried frame (same frame id, either replica) counts once', async () => {
    const run = randomBytes(4).toString('hex').toUpperCase();
    // Two distinct frames and four retries of them: 2 lines, under the threshold of 3 — nothing fires.
    for (let n = 0; n < 6; n++) expect((await post(n, 'dedupe-app', r14('web.2'), `F${run}${n % 2}`)).status).toBe(204);
    const keys = redisKeys(prefix, queuePrefix);
    expect(await redis.zcard(keys.threshold('puma-r14', 'dedupe-app', 'web.2').window)).toBe(2);
    expect(await redis.zscore(keys.recentFrames('dedupe-app', token), `F${run}0`)).not.toBeNull();
    // The third distinct frame completes the window: exactly one firing.
    expect((await post(1, 'dedupe-app', r14('web.2'), `F${run}2`)).status).toBe(204);
    expect(await eventually('the stop key of web.2', async () => (await redis.getdel(`${prefix}-stop:web.2`)) ?? undefined, 20_000)).toBe('puma-r14');
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
    expect(jobs.filter((j) => j.data.app === 'dedupe-app')).toHaveLength(1);
    await queue.close();
  });

  it('bodies of many apps at once (one turn, slots on every master): each stored on its own slot, none refused', async () => {
    const run = randomBytes(4).toString('hex').toUpperCase();
    const apps = Array.from({ length: 24 }, (_, i) => `many-${i}`);
    // Sent together to one replica, so several are ready in the same turn and flushed together (src/server/bodyFlush.ts).
    const res = await Promise.all(apps.map((app) => post(0, app, r14('web.3'), `F${run}`)));
    expect(res.map((r) => r.status)).toEqual(apps.map(() => 204));
    const keys = redisKeys(prefix, queuePrefix);
    for (const app of apps) {
      expect(await redis.zcard(keys.threshold('puma-r14', app, 'web.3').window)).toBe(1);
      expect(await redis.zscore(keys.recentFrames(app, token), `F${run}`)).not.toBeNull();
    }
  });
});
