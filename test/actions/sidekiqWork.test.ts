import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWorkRecord, readSidekiqWork, sidekiqKeys, WORK_LIMITS } from '../../src/actions/sidekiq/index.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/** Sidekiq's work records, hand-written as Sidekiq 6.4 / 7 / 8 write them, and hostile ones. */
const NOW = 1_700_000_100_000;
const SECRET = 'sk_live_SECRET_ARGUMENT_42';
const record = (payload: unknown, over: Record<string, unknown> = {}) =>
  JSON.stringify({ queue: 'default', payload: typeof payload === 'string' ? payload : JSON.stringify(payload), run_at: 1_700_000_000, ...over });
const job = (over: Record<string, unknown> = {}) => ({ retry: true, queue: 'default', class: 'ExportJob', args: [SECRET], jid: 'abc', ...over });

describe('parseWorkRecord', () => {
  it('keeps class, queue and run time of a Sidekiq 6.4/7 record (payload a JSON string), never the arguments', () => {
    const parsed = parseWorkRecord(record(job(), { queue: 'exports' }), NOW);
    expect(parsed).toEqual({ class: 'ExportJob', queue: 'exports', runS: 100 });
    expect(JSON.stringify(parsed)).not.toContain(SECRET);
  });

  it('takes the payload as an object too (older Sidekiq), and the wrapped class of an ActiveJob job', () => {
    const raw = JSON.stringify({ queue: 'mailers', run_at: 1_700_000_040, payload: job({ class: 'ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper', wrapped: 'Billing::InvoiceMailer' }) });
    expect(parseWorkRecord(raw, NOW)).toEqual({ class: 'Billing::InvoiceMailer', queue: 'mailers', runS: 60 });
  });

  it('reads run_at in milliseconds as well as seconds; a run_at ahead of our clock is 0 s', () => {
    expect(parseWorkRecord(record(job(), { run_at: 1_700_000_070_000 }), NOW)?.runS).toBe(30);
    expect(parseWorkRecord(record(job(), { run_at: 1_700_000_200 }), NOW)?.runS).toBe(0);
  });

  it('missing fields: no run_at → run time unknown; no queue → the payload queue, else "unknown"; no class → not a job', () => {
    expect(parseWorkRecord(JSON.stringify({ queue: 'q', payload: JSON.stringify(job()) }), NOW)).toEqual({ class: 'ExportJob', queue: 'q', runS: undefined });
    expect(parseWorkRecord(JSON.stringify({ payload: JSON.stringify(job({ queue: 'low' })), run_at: 'x' }), NOW)).toEqual({ class: 'ExportJob', queue: 'low', runS: undefined });
    expect(parseWorkRecord(JSON.stringify({ payload: JSON.stringify({ class: 'A' }) }), NOW)).toEqual({ class: 'A', queue: 'unknown', runS: undefined });
    expect(parseWorkRecord(record({ args: [SECRET] }), NOW)).toBeUndefined();
    expect(parseWorkRecord(JSON.stringify({ queue: 'q', run_at: 1 }), NOW)).toBeUndefined();
  });

  it('malformed JSON, wrong types and hostile names are not jobs', () => {
    for (const raw of ['', '{', 'null', '[]', '"str"', '42', JSON.stringify({ payload: '{not json' }), JSON.stringify({ payload: 42 }), JSON.stringify({ payload: '[1,2]' })]) {
      expect(parseWorkRecord(raw, NOW), raw).toBeUndefined();
    }
    expect(parseWorkRecord(null, NOW)).toBeUndefined();
    // A "class" that is really an argument, a line break (forged log lines) or a huge string.
    for (const klass of [`Job ${SECRET}`, 'Job\nmallet: forged', 'x'.repeat(200), '', 42, ['ExportJob']]) {
      expect(parseWorkRecord(record(job({ class: klass })), NOW)).toBeUndefined();
    }
    // A hostile queue name is replaced, the job kept.
    expect(parseWorkRecord(record(job({ queue: 7 }), { queue: `q ${SECRET}` }), NOW)).toEqual({ class: 'ExportJob', queue: 'unknown', runS: 100 });
  });

  it('absurd nesting and records over the size bound are refused without throwing', () => {
    // Deep nesting within the size bound: parsed, or refused, but never a throw.
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(() => parseWorkRecord(JSON.stringify({ payload: `{"class":"A","args":${deep}}` }), NOW)).not.toThrow();
    expect(parseWorkRecord(JSON.stringify({ payload: `{"class":"A","args":${deep}` }), NOW)).toBeUndefined();
    const huge = record(job({ args: ['x'.repeat(WORK_LIMITS.maxEntryBytes)] }));
    expect(parseWorkRecord(huge, NOW)).toBeUndefined();
  });
});

describe('readSidekiqWork on real Redis', () => {
  let redis: Redis;
  const ns = uniquePrefix('sqwork');
  const keys = sidekiqKeys(ns);
  beforeAll(() => { redis = testRedis(); });
  afterAll(async () => { await cleanupPrefix(redis, ns); redis.disconnect(); });

  it('reads `<id>:work` (6.4.2+) and `<id>:workers` (6.4.1)', async () => {
    await redis.hset(keys.work('w.1:1:aa')[0], 'tid1', record(job()), 'tid2', record(job({ class: 'ImportJob' }), { run_at: 1_700_000_090 }));
    await redis.hset(keys.work('w.1:2:bb')[1], 'tid3', record(job({ class: 'OldJob' })));
    const a = await readSidekiqWork(redis, keys, 'w.1:1:aa', NOW);
    expect(a.unread).toBe(0);
    expect(a.jobs.map((j) => [j.class, j.runS]).sort()).toEqual([['ExportJob', 100], ['ImportJob', 10]]);
    expect((await readSidekiqWork(redis, keys, 'w.1:2:bb', NOW)).jobs).toEqual([{ class: 'OldJob', queue: 'default', runS: 100 }]);
    expect(await readSidekiqWork(redis, keys, 'w.1:3:none', NOW)).toEqual({ jobs: [], unread: 0 });
  });

  it('a huge payload is never fetched; malformed entries are counted as unread', async () => {
    const id = 'w.2:1:cc';
    await redis.hset(keys.work(id)[0], 'big', record(job({ args: [SECRET, 'x'.repeat(WORK_LIMITS.maxEntryBytes)] })), 'bad', '{oops', 'ok', record(job()));
    const got = await readSidekiqWork(redis, keys, id, NOW);
    expect(got.jobs).toEqual([{ class: 'ExportJob', queue: 'default', runS: 100 }]);
    expect(got.unread).toBe(2);
  });

  it('1000 entries: at most maxEntries are read, the rest counted, and long thread ids skipped', async () => {
    const id = 'w.3:1:dd';
    const args: string[] = [];
    for (let i = 0; i < 1000; i++) args.push(`t${i}`, record(job({ class: `Job${i % 7}` })));
    await redis.hset(keys.work(id)[0], ...args);
    const got = await readSidekiqWork(redis, keys, id, NOW);
    expect(got.jobs.length).toBe(WORK_LIMITS.maxEntries);
    expect(got.unread).toBe(1000 - WORK_LIMITS.maxEntries);
    expect(got.jobs.every((j) => /^Job[0-6]$/.test(j.class))).toBe(true);

    const id2 = 'w.3:2:ee';
    await redis.hset(keys.work(id2)[0], 'x'.repeat(WORK_LIMITS.maxFieldBytes + 1), record(job()), 'tid', record(job()));
    expect(await readSidekiqWork(redis, keys, id2, NOW)).toEqual({ jobs: [{ class: 'ExportJob', queue: 'default', runS: 100 }], unread: 1 });
  });

  it('stops fetching past the byte budget of one process', async () => {
    const id = 'w.4:1:ff';
    const entry = record(job({ args: ['y'.repeat(100_000)] }));
    const args: string[] = [];
    for (let i = 0; i < 60; i++) args.push(`t${i}`, entry);
    await redis.hset(keys.work(id)[0], ...args);
    const got = await readSidekiqWork(redis, keys, id, NOW);
    const fits = Math.floor(WORK_LIMITS.maxTotalBytes / entry.length);
    expect(got.jobs.length).toBe(fits);
    expect(got.unread).toBe(60 - fits);
  });
});
