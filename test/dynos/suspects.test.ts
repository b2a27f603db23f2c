import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSidekiqStopExecutor } from '../../src/actions/executors/sidekiqStop.js';
import { sidekiqKeys } from '../../src/actions/sidekiq/index.js';
import { RedisSuspectStore, SUSPECT_BOUNDS, decodeSnapshot, encodeSnapshot, snapshotId, type SuspectSnapshot, type SuspectStore } from '../../src/dynos/SuspectStore.js';
import { suspectsByType, withSuspects } from '../../src/dynos/suspectReport.js';
import { buildReport, formatReport } from '../../src/dynos/report.js';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import { leakReport } from '../../src/dynos/reportIo.js';
import { leakReportSection } from '../../src/dynos/reportSection.js';
import { redisKeys } from '../../src/keys.js';
import type { SidekiqStopActionSpec } from '../../src/rules/Firing.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { SimulatedSidekiq } from '../support/rubySidekiqSimulator.js';
import { recordingStepContext } from '../support/rubyStepContext.js';

const SECRET = 'sk_live_SUSPECT_SECRET_7f3a';
let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); redis.disconnect(); });

function fresh(name: string) {
  const prefix = uniquePrefix(name);
  const ns = uniquePrefix(`${name}-sq`);
  prefixes.push(prefix, ns);
  const keys = redisKeys(prefix);
  return { prefix, keys, store: new RedisSuspectStore(redis, keys), sq: sidekiqKeys(ns), ns };
}

/** Every value under a prefix, as text: what "never stored" is checked against. */
async function everything(prefix: string): Promise<string> {
  let cursor = '0';
  const out: string[] = [];
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of found) {
      const type = await redis.type(k);
      if (type === 'hash') out.push(k, JSON.stringify(await redis.hgetall(k)));
      else if (type === 'zset') out.push(k, JSON.stringify(await redis.zrange(k, '0', '-1', 'WITHSCORES')));
      else if (type === 'string') out.push(k, (await redis.get(k)) ?? '');
      else out.push(k, type);
    }
  } while (cursor !== '0');
  return out.join('\n');
}

const workRecord = (klass: string, runAtS: number, queue = 'default', wrapped?: string) =>
  JSON.stringify({ queue, run_at: runAtS, payload: JSON.stringify({ class: klass, ...(wrapped ? { wrapped } : {}), queue, args: [SECRET, { token: SECRET }], jid: 'j1' }) });

describe('sidekiq-stop records the jobs running at quiet', () => {
  const action = (ns: string): SidekiqStopActionSpec => ({ type: 'sidekiq-stop', hostname: 'worker.1', namespace: ns, quietTimeoutMs: 300_000, stopTimeoutMs: 60_000 });

  it('records class, queue and run time per process, once per job+step even across a retry; never an argument', async () => {
    const w = fresh('sus-exec');
    const sim = new SimulatedSidekiq(redis, w.sq, { hostname: 'worker.1', busyBeats: 6 });
    await sim.beat();
    const startS = 1_700_000_000 - 300; // the simulated clock's "now" is 1_700_000_000_000 ms
    await redis.hset(w.sq.work(sim.identity)[0],
      't1', workRecord('ReportJob', startS),
      't2', workRecord('ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper', startS + 240, 'mailers', 'WelcomeMailer'),
      't3', '{broken');
    const executor = createSidekiqStopExecutor({ suspects: w.store });

    // The first attempt dies while waiting for quiet, after the record was written.
    const abort = new AbortController();
    let ticks = 0;
    const first = recordingStepContext({ redis, jobId: 'job-s1', signal: abort.signal, onTick: async () => { await sim.beat(); if (++ticks === 2) abort.abort(new Error('worker shutting down')); } });
    await expect(executor.run(action(w.ns), first)).rejects.toThrow('worker shutting down');
    // By the retry the jobs have run longer and another started: still the first record only.
    await redis.hset(w.sq.work(sim.identity)[0], 't4', workRecord('LateJob', startS));
    const retry = recordingStepContext({ redis, jobId: 'job-s1', onTick: () => sim.beat() });
    await executor.run(action(w.ns), retry);
    expect(sim.exited).toBe(true);

    const snaps = await w.store.read('my-app');
    expect(snaps).toHaveLength(1);
    expect(snaps[0]).toMatchObject({ processType: 'worker', dyno: 'worker.1', rule: 'sidekiq-memory', unread: 1, at: 1_700_000_000_000 });
    expect(snaps[0]!.jobs).toEqual([{ class: 'ReportJob', queue: 'default', runS: 300 }, { class: 'WelcomeMailer', queue: 'mailers', runS: 60 }]);
    expect(first.logs.some((l) => /was running 2 job\(s\) \(ReportJob, WelcomeMailer\), 1 work record\(s\) not read; recorded/.test(l))).toBe(true);
    expect(retry.logs.some((l) => /recorded for the leak report/.test(l))).toBe(false);

    const stored = await everything(w.prefix);
    expect(stored).toContain('ReportJob');
    expect(stored).not.toContain(SECRET);
    expect([...first.logs, ...retry.logs].join('\n')).not.toContain(SECRET);

    // Another firing (another job id) quiets the successor: a second stop.
    const next = new SimulatedSidekiq(redis, w.sq, { hostname: 'worker.1' });
    await next.beat();
    await redis.hset(w.sq.work(next.identity)[0], 't1', workRecord('ReportJob', startS + 200));
    await executor.run(action(w.ns), recordingStepContext({ redis, jobId: 'job-s2', onTick: () => next.beat() }));
    const report = withSuspects(buildReport('my-app', { instances: [], events: [] }, 7 * 86_400_000), await w.store.read('my-app'), 7 * 86_400_000, 1_700_000_000_000);
    expect(report.suspects).toEqual([{
      processType: 'worker', stops: 2, jobs: 3, unread: 1,
      classes: [
        { class: 'ReportJob', count: 2, stops: 2, medianRunS: 100, queue: 'default' },
        { class: 'WelcomeMailer', count: 1, stops: 1, medianRunS: 60, queue: 'mailers' },
      ],
    }]);
    const text = formatReport(report);
    expect(text).toContain('worker sent no memory samples; the job most often running when mallet quieted it is ReportJob (in 2 of 2 stops, median 100 s).');
    expect(text).toContain('    ReportJob  2× in 2 stops, median 100 s, queue default');
    expect(text + JSON.stringify(report)).not.toContain(SECRET);
  });

  it('a failure to record does not stop the stop', async () => {
    const w = fresh('sus-fail');
    const sim = new SimulatedSidekiq(redis, w.sq, { hostname: 'worker.1' });
    await sim.beat();
    const broken: SuspectStore = { record: async () => { throw new Error('mallet Redis away'); }, read: async () => [] };
    const ctx = recordingStepContext({ redis, jobId: 'job-f', onTick: () => sim.beat() });
    const result = await createSidekiqStopExecutor({ suspects: broken }).run(action(w.ns), ctx);
    expect(result.summary).toContain('stopped 1');
    expect(ctx.logs.some((l) => l.includes('could not record the running jobs') && l.includes('mallet Redis away'))).toBe(true);
  });
});

const snap = (at: number, jobs: Array<[string, string, number | undefined]>, over: Partial<SuspectSnapshot> = {}): SuspectSnapshot => ({
  at, processType: 'worker', dyno: 'worker.1', rule: 'r', jobs: jobs.map(([c, q, s]) => ({ class: c, queue: q, runS: s })), unread: 0, ...over,
});

describe('SuspectStore bounds', () => {
  it('keeps the newest maxSnapshots, drops those past retention, index and hash agree', async () => {
    const w = fresh('sus-bound');
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < SUSPECT_BOUNDS.maxSnapshots + 100; i++) {
      expect(await w.store.record('a1', snapshotId('job', 0, `id${i}`), snap(t0 + i * 60_000, [['A', 'q', i]]))).toBe(true);
    }
    const k = w.keys.suspects('a1');
    expect(await redis.zcard(k.index)).toBe(SUSPECT_BOUNDS.maxSnapshots);
    expect(await redis.hlen(k.snapshots)).toBe(SUSPECT_BOUNDS.maxSnapshots);
    const kept = await w.store.read('a1');
    expect(kept[0]!.at).toBe(t0 + 100 * 60_000);
    expect(await redis.ttl(k.snapshots)).toBeGreaterThan(13 * 86_400);

    // Fifteen days later one new record evicts everything older than the retention.
    await w.store.record('a1', 'late', snap(t0 + 15 * 86_400_000, [['B', 'q', 1]]));
    expect((await w.store.read('a1')).map((s) => s.jobs[0]!.class)).toEqual(['B']);
    expect(await redis.zcard(k.index)).toBe(1);
  });

  it('worst case (500 snapshots of 25 jobs with the longest names) stays under 3.5 MB of Redis', async () => {
    const w = fresh('sus-mem');
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const jobs: Array<[string, string, number]> = [];
    for (let j = 0; j < 60; j++) jobs.push([`${'K'.repeat(120)}${String(j).padStart(8, '0')}`, 'q'.repeat(64), 1_000_000 + j]);
    for (let i = 0; i < SUSPECT_BOUNDS.maxSnapshots; i++) await w.store.record('big', `id${i}`, snap(t0 + i, jobs, { processType: 'p'.repeat(100), dyno: 'd'.repeat(100), rule: 'r'.repeat(100), unread: 1e9 }));
    const k = w.keys.suspects('big');
    const bytes = ((await redis.memory('USAGE', k.index, 'SAMPLES', '0')) ?? 0) + ((await redis.memory('USAGE', k.snapshots, 'SAMPLES', '0')) ?? 0);
    expect(bytes).toBeGreaterThan(1_000_000);
    expect(bytes).toBeLessThan(3_500_000);
    const one = (await w.store.read('big'))[0]!;
    expect(one.jobs).toHaveLength(SUSPECT_BOUNDS.maxJobs);
    expect(one.unread).toBe(1e9 + 60 - SUSPECT_BOUNDS.maxJobs);
  });

  it('encode keeps the longest-running jobs; decode refuses junk', () => {
    const s = decodeSnapshot(encodeSnapshot(snap(5, [['A', 'q', 1], ['B', 'q', undefined], ['C', 'q', 9]]), 2))!;
    expect(s.jobs.map((j) => j.class)).toEqual(['C', 'A']);
    expect(s.unread).toBe(1);
    for (const raw of ['{', 'null', '{"a":1}', '{"a":1,"t":"w","j":{}}']) expect(decodeSnapshot(raw)).toBeUndefined();
    expect(decodeSnapshot('{"a":1,"t":"w","j":[[1,2],"x",["A","q","7"]]}')).toEqual({ at: 1, processType: 'w', dyno: '', rule: '', jobs: [{ class: 'A', queue: 'q', runS: undefined }], unread: 0 });
  });
});

describe('leak suspects in the report', () => {
  const T = Date.parse('2026-02-01T00:00:00Z');
  it('ranks by jobs then stops, medians the run time, takes the commonest queue, honours --since', () => {
    const snaps = [
      snap(T - 10 * 86_400_000, [['Ancient', 'q', 1], ['Ancient', 'q', 1], ['Ancient', 'q', 1]]),
      snap(T, [['Export', 'low', 100], ['Export', 'low', 300], ['Mail', 'm', 5]]),
      snap(T + 1, [['Export', 'high', 200], ['Mail', 'm', undefined]]),
      snap(T + 2, [['Mail', 'm', 7], ['Zed', 'z', 1]]),
      snap(T + 3, [], { processType: 'web', unread: 2 }),
    ];
    const [web, worker] = suspectsByType(snaps, T - 7 * 86_400_000);
    expect(web).toEqual({ processType: 'web', stops: 1, jobs: 0, unread: 2, classes: [] });
    expect(worker!.stops).toBe(3);
    expect(worker!.classes).toEqual([
      { class: 'Mail', count: 3, stops: 3, medianRunS: 5, queue: 'm' },
      { class: 'Export', count: 3, stops: 2, medianRunS: 200, queue: 'low' },
      { class: 'Zed', count: 1, stops: 1, medianRunS: 1, queue: 'z' },
    ]);
  });

  it('adds the top suspect to the sentence of a type with memory samples, and a table to the status page', async () => {
    const mem = new MemoryDynoStore();
    const samples = [];
    for (let i = 0; i < 120; i++) samples.push({ app: 'leaky', dyno: 'worker.1', instance: 'u1', at: T - 7200_000 + i * 60_000, valueMb: 200 + i, limitMb: 512, swapMb: 0 });
    await mem.write('leaky', { samples, events: [] } as never);
    const snaps = [snap(T - 60_000, [['Billing::Export<Job>', 'default', 3600]])];
    const suspects: SuspectStore = { record: async () => true, read: async () => snaps };
    const r = await leakReport(mem, 'leaky', 7 * 86_400_000, suspects, T);
    const worker = r.types.find((t) => t.processType === 'worker')!;
    expect(worker.sentence).toMatch(/^worker grows ~60 MB\/h .*; the job most often running when mallet quieted it is Billing::Export<Job> \(in 1 of 1 stop, median 60 min\)\.$/);
    expect(formatReport(r)).toContain('  leak suspects (jobs running when quieted, 1 Sidekiq stop, 1 job):');
    const html = (await leakReportSection(mem, ['leaky'], 7 * 86_400_000, suspects)).html;
    expect(html).toContain('<code>Billing::Export&#60;Job&#62;</code>');
    expect(html).toContain('worker leak suspects');
    expect(html).not.toContain('<Job>');
  });
});
