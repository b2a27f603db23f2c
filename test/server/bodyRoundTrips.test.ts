import { afterAll, describe, expect, it } from 'vitest';
import type { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import type { Firing, FiringSink } from '../../src/rules/Firing.js';
import { compiledRules, realPipeline, TWICE_AND_ONCE } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';
import { countingRedis } from '../support/countingRedis.js';

/**
 * The drain's per-body cost: one Redis round trip per body whatever it holds (frame check, votes,
 * observer writes and the frame mark in one script call), none for a body that is not
 * de-duplicated and writes nothing; a body that fired stores its firings before its frame is done.
 */
const admin = testRedis();
const prefix = uniquePrefix('trips');
afterAll(async () => { await cleanupPrefix(admin, prefix); admin.disconnect(); });

const ruleSet = compiledRules(TWICE_AND_ONCE);


function setup(sink: FiringSink) {
  const conn = countingRedis();
  let store!: RedisDynoStore;
  const { pipeline, metrics, keys } = realPipeline({
    redis: conn.redis, prefix, ruleSet, sink,
    observers: (k) => { store = new RedisDynoStore(conn.redis, k); return [new DynoObserver(store)]; },
  });
  return { ...conn, pipeline, metrics, store, keys };
}

const enqueue: FiringSink = { async submit(f) { return f.map(() => 'enqueued' as const); } };
const batchOf = (app: string, frameId: string, body: Buffer, dedupe = true) => ({ app, drainToken: 'd.1', frameId, dedupe, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
const sample = (dyno: string) => `source=${dyno} dyno=heroku.54241834.0ad3ad41-1c6b-4d5b-9f43-4bd1d0c3e0a1 sample#memory_total=100.00MB sample#memory_rss=100.00MB sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=1pages sample#memory_pgpgout=1pages sample#memory_quota=512.00MB`;

async function linesOf(metrics: ReturnType<typeof createMetrics>, app: string): Promise<number> {
  const { values } = await metrics.linesTotal.get();
  return values.filter((v) => v.labels.app === app).reduce((a, v) => a + v.value, 0);
}

/** Warm the connection (the body script loaded: EVALSHA, not a first EVAL) before counting. */
async function warm(s: ReturnType<typeof setup>): Promise<void> {
  if (s.redis.status !== 'ready') await new Promise((r) => s.redis.once('ready', r));
  await s.pipeline.ingest(batchOf('warm-app', `W${Math.random()}`, frame(drainLine('app', 'web.9', 'hello'))));
  s.reset();
}

describe('one round trip per body', () => {
  it('a body no rule matches and no observer wants: one command (the frame check and mark), and a retry counts nothing', async () => {
    const s = setup(enqueue);
    await warm(s);
    const body = frame(drainLine('app', 'web.1', 'GET / 200'), drainLine('heroku', 'router', 'at=info method=GET path=/'));
    expect(await s.pipeline.ingest(batchOf('quiet-app', 'Q1', body))).toEqual({ duplicate: false, lines: 2, firings: 0 });
    expect(s.commands()).toEqual(['evalsha']);
    s.reset();
    expect((await s.pipeline.ingest(batchOf('quiet-app', 'Q1', body))).duplicate).toBe(true);
    expect(s.commands()).toEqual(['evalsha']);
    expect(await linesOf(s.metrics, 'quiet-app')).toBe(2);
    s.redis.disconnect();
  });

  it('a body with a vote that does not fire and a memory sample: one command, both stored', async () => {
    const s = setup(enqueue);
    await warm(s);
    const body = frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)'), drainLine('heroku', 'web.1', sample('web.1')));
    expect(await s.pipeline.ingest(batchOf('vote-app', 'V1', body))).toEqual({ duplicate: false, lines: 2, firings: 0 });
    // One vote (the budget, the threshold and the observer's write in the same script call).
    expect(s.commands()).toEqual(['evalsha', 'sadd']); // the console's app list: once per app per process
    expect((await s.store.read('vote-app')).instances).toHaveLength(1);
    const window = s.keys.threshold('twice', 'vote-app', 'web.1').window;
    expect(await admin.zcard(window)).toBe(1);
    s.reset();
    const again = frame(drainLine('heroku', 'web.1', sample('web.1')), drainLine('app', 'web.1', 'GET / 200'));
    await s.pipeline.ingest(batchOf('vote-app', 'V2', again));
    expect(s.commands()).toEqual(['evalsha']);
    s.redis.disconnect();
  });

  it('a body that is not de-duplicated (syslog) and writes nothing makes no round trip', async () => {
    const s = setup(enqueue);
    await warm(s);
    const r = await s.pipeline.ingest(batchOf('syslog-app', 'S1', frame(drainLine('app', 'web.1', 'hello')), false));
    expect(r).toEqual({ duplicate: false, lines: 1, firings: 0 });
    expect(s.commands()).toEqual([]);
    expect(await linesOf(s.metrics, 'syslog-app')).toBe(1);
    s.redis.disconnect();
  });
});

describe('a body that fires', () => {
  it('stores its firings before its frame is done: a firing that could not be stored leaves the frame open, counted nothing, observers unwritten', async () => {
    let fail = true;
    const submitted: Firing[] = [];
    const s = setup({ async submit(f) { if (fail) throw new Error('queue unavailable'); submitted.push(...f); return f.map(() => 'enqueued' as const); } });
    await warm(s);
    const body = frame(drainLine('heroku', 'web.2', 'Error R14 (Memory quota exceeded)'), drainLine('heroku', 'web.2', sample('web.2')));
    await expect(s.pipeline.ingest(batchOf('fire-app', 'F1', body))).rejects.toThrow(/queue unavailable/);
    expect(await linesOf(s.metrics, 'fire-app')).toBe(0);
    expect((await s.store.read('fire-app')).instances).toEqual([]);
    expect(await admin.zscore(s.keys.recentFrames('fire-app', 'd.1'), 'F1')).toBeNull();
    // The retry is judged again: the same firing (one job id), stored once, then the frame is done.
    fail = false;
    expect(await s.pipeline.ingest(batchOf('fire-app', 'F1', body))).toEqual({ duplicate: false, lines: 2, firings: 1 });
    expect(submitted.map((f) => `${f.rule}/${f.target}`)).toEqual(['once/web.2']);
    expect((await s.store.read('fire-app')).events.map((e) => e.kind)).toEqual(['remediation']);
    expect(await linesOf(s.metrics, 'fire-app')).toBe(2);
    // A third delivery is skipped whole.
    expect((await s.pipeline.ingest(batchOf('fire-app', 'F1', body))).duplicate).toBe(true);
    expect(submitted).toHaveLength(1);
    expect(await linesOf(s.metrics, 'fire-app')).toBe(2);
    s.redis.disconnect();
  });
});

describe('a body whose Redis write fails', () => {
  it('is refused (the drain answers 503) and counted nothing; its retry is judged and counted once', async () => {
    const s = setup(enqueue);
    await warm(s);
    const body = frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)'), drainLine('app', 'web.1', 'hello'));
    s.redis.disconnect();
    await expect(s.pipeline.ingest(batchOf('down-app', 'D1', body))).rejects.toThrow();
    expect(await linesOf(s.metrics, 'down-app')).toBe(0);
    const { values } = await s.metrics.ruleMatchesTotal.get();
    expect(values.filter((v) => v.labels.rule === 'twice')).toEqual([]);
    expect(await admin.zcard(s.keys.threshold('twice', 'down-app', 'web.1').window)).toBe(0);
    while (s.redis.status !== 'end') await new Promise((r) => setTimeout(r, 10));
    await s.redis.connect();
    expect((await s.pipeline.ingest(batchOf('down-app', 'D1', body))).duplicate).toBe(false);
    expect((await s.pipeline.ingest(batchOf('down-app', 'D1', body))).duplicate).toBe(true);
    expect(await linesOf(s.metrics, 'down-app')).toBe(2);
    expect(await admin.zcard(s.keys.threshold('twice', 'down-app', 'web.1').window)).toBe(1);
    s.redis.disconnect();
  });
});
