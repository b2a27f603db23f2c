import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { claimStopKey, type StopKeyWrite } from '../../src/actions/scripts/claimStopKey.js';
import { acquireRollingSlot } from '../../src/actions/scripts/rollingSlot.js';
import { wakeChannel } from '../../src/agent/wakeChannel.js';
import type { ResolvedAction } from '../../src/rules/Firing.js';
import { testRedis, testRedisUrl } from '../support/redis.js';
import { createHarness, jobLogs, makeFiring, metricValue, settled, startWebhook, type Harness } from './harness.js';

/**
 * claimStopKey writes a first stop key in the claim's round trip: it must decide as the separate
 * lock check, ledger read and rolling slot did, and a step recorded by an earlier run must not
 * be written again — whether that run failed later on, or died.
 */
let h: Harness | undefined;
const children: ChildProcess[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const c of closers.splice(0)) await c();
  await h?.close();
  h = undefined;
});

/** Counts the wake PUBLISHes of a key: one per write of it, whoever wrote it. */
async function countWrites(key: string): Promise<() => number> {
  const sub = testRedis();
  let n = 0;
  sub.on('message', () => { n++; });
  await sub.subscribe(wakeChannel(key));
  closers.push(async () => { sub.disconnect(); });
  return () => n;
}

/** Outside the harness's consumer prefix (`puma::stop::`): nobody takes it, it stays to be read. */
const unwatched = (key: string): ResolvedAction => ({ type: 'redis-stop-key', key, value: '1', ttlMs: 60_000, watch: false });

describe('claimStopKey, the script', () => {
  it('writes only when the lock is this run\'s, the step is not recorded and a slot is free', async () => {
    h = createHarness('claimkey');
    const r = h.redis;
    const p = h.prefix;
    const lock = `${p}:job:lock`;
    const steps = `${p}:job:steps`;
    const rolling = `${p}:rolling`;
    const write = (key: string): StopKeyWrite => ({ key, value: 'v', ttlMs: 30_000, channel: wakeChannel(key), message: 'wake' });
    const claim = (key: string, jobId = 'j1', concurrency = 1) => {
      const now = Date.now();
      return claimStopKey(r, { lock, steps, rolling }, { token: 'tok', jobId, now, leaseUntil: now + 60_000, concurrency, write: write(key) });
    };

    // Another run's lock: nothing written (the slot is taken, as when the two went out together).
    await r.set(lock, 'other');
    const lost = await claim(`${p}:k1`);
    expect(lost).toMatchObject({ claim: 'lock-lost', slot: true });
    expect(lost.written).toBeUndefined();
    expect(await r.exists(`${p}:k1`)).toBe(0);

    // Every slot held by another job: nothing written.
    await r.set(lock, 'tok');
    await r.del(rolling);
    expect(await acquireRollingSlot(r, rolling, 'j0', Date.now(), Date.now() + 60_000, 1)).toBe(true);
    const full = await claim(`${p}:k2`);
    expect(full).toMatchObject({ claim: 'owned', slot: false });
    expect(full.written).toBeUndefined();
    expect(await r.exists(`${p}:k2`)).toBe(0);

    // Free: the SET with its TTL and the PUBLISH, and the ledger's records read back.
    await r.del(rolling);
    await r.hset(steps, 'note:waiting', 'x');
    const writes = await countWrites(`${p}:k3`);
    const ok = await claim(`${p}:k3`);
    expect(ok).toMatchObject({ claim: 'owned', slot: true, records: { 'note:waiting': 'x' }, written: { listeners: 1 } });
    expect(await r.get(`${p}:k3`)).toBe('v');
    expect(await r.pttl(`${p}:k3`)).toBeGreaterThan(29_000);
    expect(await r.zscore(rolling, 'j1')).not.toBeNull();

    // Step 0 recorded: not written again.
    await r.del(`${p}:k3`);
    await r.hset(steps, '0', JSON.stringify({ type: 'redis-stop-key', summary: 'SET', at: 1 }));
    const again = await claim(`${p}:k3`);
    expect(again).toMatchObject({ claim: 'owned', slot: true });
    expect(again.records['0']).toBeDefined();
    expect(again.written).toBeUndefined();
    expect(await r.exists(`${p}:k3`)).toBe(0);
    for (let i = 0; i < 20 && writes() < 1; i++) await new Promise((res) => setTimeout(res, 10));
    expect(writes()).toBe(1);

    // A SET that fails is answered, not thrown: the slot is this run's to keep or give back.
    await r.del(steps);
    await r.set(`${p}:k4`, 'x');
    const failed = await claimStopKey(r, { lock, steps, rolling }, { token: 'tok', jobId: 'j1', now: Date.now(), leaseUntil: Date.now() + 60_000, concurrency: 1, write: { ...write(`${p}:k4`), ttlMs: -5 } });
    expect(failed.written).toMatchObject({ setError: expect.any(Error) });
  });
});

describe('claimStopKey, PUBLISH refused by an ACL', () => {
  it('the key is written and the refusal answered, as the pipeline would have (the step goes on)', async () => {
    // A private redis-server on a socket of its own (no port another's could hold): ACL users
    // are not set on the shared one.
    const path = `/tmp/mallet-claimkey-${process.pid}-${Date.now()}.sock`;
    const server = spawn('redis-server', ['--port', '0', '--unixsocket', path, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    children.push(server);
    closers.push(() => rm(path, { force: true }));
    const admin = new Redis({ path, retryStrategy: (n) => (n > 50 ? null : 50) });
    admin.on('error', () => {});
    closers.push(async () => { admin.disconnect(); });
    await admin.call('ACL', 'SETUSER', 'nopublish', 'on', '>pw1', '~*', '&*', '+@all', '-publish');
    const user = new Redis({ path, username: 'nopublish', password: 'pw1' });
    closers.push(async () => { user.disconnect(); });
    await user.set('lock', 'tok');
    const now = Date.now();
    const c = await claimStopKey(user, { lock: 'lock', steps: 'steps', rolling: 'rolling' }, {
      token: 'tok', jobId: 'j1', now, leaseUntil: now + 60_000, concurrency: 1, write: { key: 'k', value: 'v', ttlMs: 30_000, channel: wakeChannel('k'), message: 'wake' },
    });
    expect(c).toMatchObject({ claim: 'owned', slot: true, written: { listeners: 0, publishError: expect.any(Error) } });
    expect(await user.get('k')).toBe('v');
  });
});

/** The job completed, both steps ran once, and the retry skipped the stop key its ledger recorded. */
async function expectWrittenOnceThenSkipped(queue: Parameters<typeof settled>[0], jobId: string, hook: { bodies: unknown[] }, writes: () => number, timeoutMs: number): Promise<void> {
  const { state } = await settled(queue, jobId, timeoutMs);
  expect(state).toBe('completed');
  expect(hook.bodies).toHaveLength(2);
  expect(writes()).toBe(1);
  const logs = await jobLogs(queue, jobId);
  expect(logs.filter((l) => l.startsWith('step 1 redis-stop-key: done: SET'))).toHaveLength(1);
  expect(logs).toContain('step 1 redis-stop-key: already done, skipped');
}

describe('a first stop key written with the claim, exactly once', () => {
  it('a run after a failed later step skips it (the ledger says it was done)', async () => {
    h = createHarness('claimkey-retry');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(500); // step 2 fails on the first attempt; the retry finds step 1 recorded
    const key = `${h.prefix}:fused::web.1`;
    const writes = await countWrites(key);
    const queue = h.queue();
    h.worker({ env: { HOOK_URL: hook.url } });
    const firing = makeFiring({ actions: [unwatched(key), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    await queue.submit([firing]);
    await expectWrittenOnceThenSkipped(queue, firing.id, hook, writes, 20_000);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'redis-stop-key', outcome: 'done' })).toBe(1);
    expect(await metricValue(h.metrics, 'mallet_actions_total', { type: 'redis-stop-key', outcome: 'skipped' })).toBe(1);
    const record = JSON.parse((await h.redis.hget(h.keys.jobSteps(firing.id), '0'))!) as { summary: string };
    expect(record.summary).toBe(`SET ${key} PX 60000 (watch: false, not watched for consumption); PUBLISH ${wakeChannel(key)} reached 1 subscriber(s)`);
  }, 40_000);

  it('a worker SIGKILLed after the claim wrote and recorded it: the run that resumes the job does not write it again', async () => {
    h = createHarness('claimkey-stall');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(0); // the child hangs in step 2, after step 1's record
    const key = `${h.prefix}:fused::web.1`;
    const writes = await countWrites(key);
    const queue = h.queue();
    const firing = makeFiring({ actions: [unwatched(key), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    await queue.submit([firing]);

    const script = fileURLToPath(new URL('./fixtures/stallWorker.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, STALL_REDIS_URL: testRedisUrl(), STALL_PREFIX: h.prefix, STALL_QUEUE_PREFIX: h.queuePrefix, STALL_HOOK_URL: hook.url, STALL_COUNTER_KEY: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    for (let i = 0; i < 1200 && hook.bodies.length < 1; i++) await new Promise((r) => setTimeout(r, 25));
    expect(hook.bodies).toHaveLength(1);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await h.redis.hget(h.keys.jobSteps(firing.id), '0')).not.toBeNull();
    expect(writes()).toBe(1);

    h.worker({ env: { HOOK_URL: hook.url }, lockDuration: 1000, stalledInterval: 500 });
    await expectWrittenOnceThenSkipped(queue, firing.id, hook, writes, 25_000);
  }, 120_000);
});
