import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sidekiqStopExecutor } from '../../src/actions/executors/sidekiqStop.js';
import { findSidekiqProcesses, sidekiqKeys } from '../../src/actions/sidekiq/index.js';
import { spawnSidekiq, startPrivateRedis, type PrivateRedis, type Spawned, stopAll } from '../support/rubyProcesses.js';
import { recordingStepContext } from '../support/rubyStepContext.js';
import { eventually } from '../support/eventually.js';

/** Sidekiq acts on its heartbeat (5 s in 6.x): allow a minute. */
const until = <T>(probe: () => Promise<T | undefined | false>, what: string) => eventually(what, probe, 60_000, 100);

/**
 * Real Sidekiq 6 processes stopped by the sidekiq-stop executor. Sidekiq 6 without
 * redis-namespace uses fixed key names, so this file has a redis-server of its own.
 */
let priv: PrivateRedis;
let redis: Redis;
const running: Spawned[] = [];
const keys = sidekiqKeys();

beforeAll(async () => {
  priv = await startPrivateRedis();
  redis = priv.client();
});
afterEach(async () => {
  await stopAll(running.splice(0));
  await redis.flushdb();
});
afterAll(async () => {
  await priv?.stop();
});

function start(dyno: string, queue: string, timeoutS?: number): Spawned {
  const p = spawnSidekiq({ redisUrl: priv.url, dyno, queue, concurrency: 1, ...(timeoutS ? { timeoutS } : {}) });
  running.push(p);
  return p;
}

/** Enqueues as Sidekiq's Ruby client does: SADD queues, LPUSH queue:<name> the job JSON. */
async function enqueue(queue: string, klass: string, args: unknown[]): Promise<string> {
  const jid = randomBytes(12).toString('hex');
  const now = Date.now() / 1000;
  const payload = JSON.stringify({ class: klass, args, retry: false, queue, jid, created_at: now, enqueued_at: now });
  await redis.multi().sadd('queues', queue).lpush(`queue:${queue}`, payload).exec();
  return jid;
}


const events = () => redis.lrange('e2e:events', 0, -1);
const registered = (hostname: string) =>
  until(async () => {
    const found = await findSidekiqProcesses(redis, keys, { hostname });
    return found.length === 1 ? found[0] : undefined;
  }, `${hostname} in processes`);

describe('sidekiq-stop against real Sidekiq 6', () => {
  it('quiets worker.1, lets its running job finish, stops it cleanly; worker.2 untouched; no job lost or doubled', async () => {
    const w1 = start('worker.1', 'q1');
    const w2 = start('worker.2', 'q2');
    const p1 = await registered('worker.1');
    const p2 = await registered('worker.2');

    await enqueue('q1', 'SlowJob', ['a', 8]);
    await enqueue('q2', 'SlowJob', ['b', 8]);
    await until(async () => (await events()).includes('start:a:worker.1') && (await events()).includes('start:b:worker.2'), 'both jobs running');
    // Waits in q1 behind job a (concurrency 1): must neither run nor vanish.
    const waitingJid = await enqueue('q1', 'SlowJob', ['c', 1]);

    const ctx = recordingStepContext({ redis, clock: 'real', jobId: 'e2e-stop-1' });
    const result = await sidekiqStopExecutor.run(
      { type: 'sidekiq-stop', hostname: 'worker.1', quietTimeoutMs: 60_000, stopTimeoutMs: 60_000 },
      ctx,
    );

    expect(result.warnings ?? []).toEqual([]);
    expect(result.summary).toContain(p1.identity);
    expect(await w1.exited).toBe(0);
    expect(w1.output()).toContain('Bye!');
    const ev = await events();
    expect(ev.filter((e) => e === 'start:a:worker.1')).toHaveLength(1);
    expect(ev.filter((e) => e === 'done:a:worker.1')).toHaveLength(1);
    expect(ev.some((e) => e.startsWith('start:c:'))).toBe(false);
    const q1 = await redis.lrange('queue:q1', 0, -1);
    expect(q1.map((j) => (JSON.parse(j) as { jid: string }).jid)).toEqual([waitingJid]);
    // It went quiet with the job running, and TERM waited for it.
    expect(ctx.progressReports.some((p) => p.phase === 'quiet' && p.busy === 1)).toBe(true);
    expect(ctx.progressReports.filter((p) => p.phase === 'quiet').at(-1)).toMatchObject({ busy: 0 });

    // worker.2 was never signalled and is still working.
    expect(w2.child.exitCode).toBeNull();
    expect(await redis.sismember('processes', p2.identity)).toBe(1);
    await until(async () => (await events()).includes('done:b:worker.2'), 'job b done on worker.2');
    expect((await findSidekiqProcesses(redis, keys, { hostname: 'worker.2' }))[0]?.quiet).toBe(false);
  });

  it('after quiet_timeout it stops anyway and Sidekiq pushes the unfinished job back to its queue', async () => {
    const w1 = start('worker.1', 'q3', 2);
    await registered('worker.1');
    const jid = await enqueue('q3', 'ForeverJob', ['forever']);
    await until(async () => (await events()).includes('start:forever:worker.1'), 'the endless job running');

    const ctx = recordingStepContext({ redis, clock: 'real', jobId: 'e2e-stop-2' });
    const result = await sidekiqStopExecutor.run(
      { type: 'sidekiq-stop', hostname: 'worker.1', quietTimeoutMs: 3_000, stopTimeoutMs: 60_000 },
      ctx,
    );

    expect(result.warnings?.[0]).toMatch(/^quiet_timeout \(3s\) expired on hostname worker\.1 with [01] job\(s\) busy.*stopped anyway/);
    await w1.exited;
    expect(w1.output()).toContain('Bye!');
    const q3 = await redis.lrange('queue:q3', 0, -1);
    expect(q3.map((j) => (JSON.parse(j) as { jid: string }).jid)).toEqual([jid]);
    expect(await redis.smembers('processes')).toEqual([]);
  });
});
