import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSidekiqStopExecutor } from '../../src/actions/executors/sidekiqStop.js';
import { findSidekiqProcesses, sidekiqKeys } from '../../src/actions/sidekiq/index.js';
import { runReport } from '../../src/cli/report.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { leakReportSection } from '../../src/dynos/reportSection.js';
import { RedisSuspectStore } from '../../src/dynos/SuspectStore.js';
import type { LeakReport } from '../../src/dynos/report.js';
import { redisKeys } from '../../src/keys.js';
import { reportRoutes } from '../../src/server/reportRoute.js';
import { eventually } from '../support/eventually.js';
import { spawnSidekiq, startPrivateRedis, stopAll, type PrivateRedis, type Spawned } from '../support/rubyProcesses.js';
import { recordingStepContext } from '../support/rubyStepContext.js';

/**
 * Leak suspects from a real Sidekiq 6 process: the jobs running when sidekiq-stop sends quiet
 * are read from Sidekiq's own work records and reach the leak report by class, never by argument.
 * Sidekiq 6 without redis-namespace uses fixed key names, so this file has a redis-server of its
 * own; mallet's keys live there too, under a prefix.
 */
const until = <T>(probe: () => Promise<T | undefined | false>, what: string) => eventually(what, probe, 60_000, 100);
const SECRET = `sk_live_${randomBytes(8).toString('hex')}`;
const PREFIX = 'mallet-e2e-suspects';

let priv: PrivateRedis;
let redis: Redis;
const running: Spawned[] = [];
beforeAll(async () => {
  priv = await startPrivateRedis();
  redis = priv.client();
});
afterAll(async () => {
  await stopAll(running.splice(0));
  await priv?.stop();
});

async function enqueue(queue: string, klass: string, args: unknown[]): Promise<void> {
  const now = Date.now() / 1000;
  const payload = JSON.stringify({ class: klass, args, retry: false, queue, jid: randomBytes(12).toString('hex'), created_at: now, enqueued_at: now });
  await redis.multi().sadd('queues', queue).lpush(`queue:${queue}`, payload).exec();
}

function capture(env: Record<string, string>) {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  return { io: { stdout: sink((s) => { out += s; }), stderr: sink((s) => { err += s; }), env, cwd: process.cwd() }, out: () => out, err: () => err };
}

describe('leak suspects from real Sidekiq 6', () => {
  it('records the classes running when quiet was sent; the report names them, never their arguments', async () => {
    const keys = sidekiqKeys();
    const mallet = redisKeys(PREFIX);
    const store = new RedisSuspectStore(redis, mallet);
    const w1 = spawnSidekiq({ redisUrl: priv.url, dyno: 'worker.1', queue: 'exports', concurrency: 3 });
    running.push(w1);
    const proc = await until(async () => (await findSidekiqProcesses(redis, keys, { hostname: 'worker.1' }))[0], 'worker.1 in processes');

    await enqueue('exports', 'ExportJob', ['e1', 15, SECRET]);
    await enqueue('exports', 'ExportJob', ['e2', 15, SECRET]);
    await enqueue('exports', 'SlowJob', ['s1', 15]);
    // The work hash is written at the heartbeat (5 s): the jobs run long enough for one to see all three.
    await until(async () => (await redis.hlen(`${proc.identity}:workers`)) === 3, 'three jobs in the work records');
    expect(JSON.stringify(await redis.hgetall(`${proc.identity}:workers`))).toContain(SECRET);

    const ctx = recordingStepContext({ redis, clock: 'real', jobId: 'e2e-suspects-1' });
    const result = await createSidekiqStopExecutor({ suspects: store }).run(
      { type: 'sidekiq-stop', hostname: 'worker.1', quietTimeoutMs: 60_000, stopTimeoutMs: 60_000 },
      ctx,
    );
    expect(result.summary).toContain(proc.identity);
    expect(await w1.exited).toBe(0);
    // Quiet let them finish: they were running when it was sent.
    expect((await redis.lrange('e2e:events', 0, -1)).filter((e) => e.startsWith('done:'))).toHaveLength(3);

    const snaps = await store.read('my-app');
    expect(snaps).toHaveLength(1);
    expect(snaps[0]!.processType).toBe('worker');
    expect(snaps[0]!.unread).toBe(0);
    expect(snaps[0]!.jobs.map((j) => j.class).sort()).toEqual(['ExportJob', 'ExportJob', 'SlowJob']);
    expect(snaps[0]!.jobs.every((j) => j.queue === 'exports' && j.runS !== undefined && j.runS >= 0 && j.runS < 60)).toBe(true);

    // Nothing of mallet's holds the argument: its keys, the audit log, the report three ways.
    const mine: string[] = [];
    for (const k of (await redis.scan('0', 'MATCH', `${PREFIX}:*`, 'COUNT', 1000))[1]) {
      mine.push(k, JSON.stringify((await redis.type(k)) === 'hash' ? await redis.hgetall(k) : await redis.zrange(k, '0', '-1', 'WITHSCORES')));
    }
    expect(mine.length).toBe(4);
    expect(mine.join('\n')).toContain('ExportJob');
    expect(mine.join('\n')).not.toContain(SECRET);
    expect(ctx.logs.join('\n')).toContain('was running 3 job(s) (ExportJob, SlowJob)');
    expect(ctx.logs.join('\n')).not.toContain(SECRET);

    const text = capture({ REDIS_URL: priv.url, MALLET_KEY_PREFIX: PREFIX });
    expect(await runReport(['--app', 'my-app'], text.io)).toBe(0);
    expect(text.out()).toMatch(/worker sent no memory samples; the job most often running when mallet quieted it is ExportJob \(in 1 of 1 stop, median \d+ s\)\./);
    expect(text.out()).toMatch(/ {4}ExportJob {2}2× in 1 stop, median \d+ s, queue exports\n {4}SlowJob {2}1× in 1 stop/);
    const json = capture({ REDIS_URL: priv.url, MALLET_KEY_PREFIX: PREFIX });
    expect(await runReport(['--app', 'my-app', '--json'], json.io)).toBe(0);
    const report = JSON.parse(json.out()) as LeakReport;
    expect(report.suspects?.[0]?.classes.map((c) => [c.class, c.count, c.queue])).toEqual([['ExportJob', 2, 'exports'], ['SlowJob', 1, 'exports']]);

    const app = Fastify();
    await app.register(reportRoutes, { store: new RedisDynoStore(redis, mallet), password: 'pw', suspects: store });
    const res = await app.inject({ url: '/admin/api/report?app=my-app', headers: { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` } });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect((res.json() as LeakReport).suspects?.[0]?.classes[0]?.class).toBe('ExportJob');

    const html = (await leakReportSection(new RedisDynoStore(redis, mallet), ['my-app'], 7 * 86_400_000, store)).html;
    expect(html).toContain('<code>ExportJob</code>');
    expect(text.out() + json.out() + res.body + html).not.toContain(SECRET);
  });
});
