import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { FiringSink } from '../../src/rules/Firing.js';
import { BodyFlush, slotGroup } from '../../src/server/bodyFlush.js';
import { compiledRules, realPipeline, TWICE_AND_ONCE } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';
import { restartableRedis } from '../support/restartableRedis.js';

/**
 * The bodies ready in the same event-loop turn share one socket write (src/server/bodyFlush.ts),
 * and stay separate script calls: one body whose call fails is answered as failed (→ 503) and
 * counts nothing while the others of the same write are stored and counted; calls reach Redis in
 * the order they were made; a turn larger than the bound is written as several pipelines.
 */
const admin = testRedis();
const prefix = uniquePrefix('flush');
afterAll(async () => { await cleanupPrefix(admin, prefix); admin.disconnect(); });

/** A drain connection as the service opens it, counting what it writes to its socket. */
async function writingRedis(url = testRedisUrl()): Promise<{ redis: Redis; writes: () => number; reset: () => void }> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  await new Promise((r) => redis.once('ready', r));
  let writes = 0;
  // The socket's own writes (one system call each: a corked socket's buffered chunks leave in one _writev).
  const stream = (redis as unknown as { stream: Record<'_write' | '_writev', (...a: unknown[]) => unknown> }).stream;
  for (const m of ['_write', '_writev'] as const) {
    const write = stream[m].bind(stream);
    stream[m] = (...a: unknown[]) => { writes++; return write(...a); };
  }
  return { redis, writes: () => writes, reset: () => { writes = 0; } };
}

const enqueue: FiringSink = { async submit(f) { return f.map(() => 'enqueued' as const); } };
const batchOf = (app: string, frameId: string, body: Buffer) => ({ app, drainToken: 'd.1', frameId, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });

async function linesOf(metrics: ReturnType<typeof createMetrics>, app: string): Promise<number> {
  const { values } = await metrics.linesTotal.get();
  return values.filter((v) => v.labels.app === app).reduce((a, v) => a + v.value, 0);
}

describe('bodies of the same turn share one write', () => {
  it('eight bodies ready together: one socket write; one whose script fails is the only one refused, and counts nothing', async () => {
    const conn = await writingRedis();
    const { pipeline, metrics, keys } = realPipeline({ redis: conn.redis, prefix, ruleSet: compiledRules(TWICE_AND_ONCE), sink: enqueue });
    // No rule matches (web.3): a body that fired would mark its frame in a second call, after its
    // firing is stored; here each body is its one script call (frame check, mark).
    const body = frame(drainLine('app', 'web.1', 'GET / 200'), drainLine('heroku', 'web.3', 'Error R14 (Memory quota exceeded)'));
    const apps = ['flush-a', 'flush-b', 'flush-c', 'flush-bad', 'flush-d', 'flush-e', 'flush-f', 'flush-g'];
    // Warm: the script loaded on this socket (EVALSHA from now on), each app registered once.
    for (const app of apps) await pipeline.ingest(batchOf(app, 'W1', body));
    const before = new Map(await Promise.all(apps.map(async (app) => [app, await linesOf(metrics, app)] as const)));
    // The failing body's frames key holds a string: its script's first ZSCORE fails (WRONGTYPE).
    await admin.set(keys.recentFrames('flush-bad', 'd.1'), 'not a sorted set');
    conn.reset();
    const results = await Promise.allSettled(apps.map((app) => pipeline.ingest(batchOf(app, 'F1', body))));
    expect(conn.writes()).toBe(1);
    for (const [i, app] of apps.entries()) {
      if (app === 'flush-bad') {
        expect(results[i]!.status).toBe('rejected');
        expect(String((results[i] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
        expect(await linesOf(metrics, app)).toBe(before.get(app));
      } else {
        expect(results[i]).toEqual({ status: 'fulfilled', value: { duplicate: false, lines: 2, firings: 0 } });
        expect(await linesOf(metrics, app)).toBe(before.get(app)! + 2);
        // Stored: the same frame again is a retry, skipped whole.
        expect((await pipeline.ingest(batchOf(app, 'F1', body))).duplicate).toBe(true);
      }
    }
    conn.redis.disconnect();
  });

  it('calls reach Redis in the order they were made, and a turn over the bound is written as several pipelines', async () => {
    const conn = await writingRedis();
    const list = `${prefix}:{order}:list`;
    conn.redis.defineCommand('flushTestPush', { numberOfKeys: 1, lua: "return redis.call('RPUSH', KEYS[1], ARGV[1])" });
    const flush = new BodyFlush(conn.redis, 'flushTestPush', { maxCalls: 4, maxBytes: 1 << 20 });
    await flush.call(list, [list, 'warm']);
    conn.reset();
    const n = 10;
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => flush.call(list, [list, String(i)])));
    // 4 + 4 written when each filled, the last 2 at the turn's end.
    expect(conn.writes()).toBe(3);
    expect(replies).toEqual(Array.from({ length: n }, (_, i) => i + 2));
    expect(await admin.lrange(list, 1, -1)).toEqual(Array.from({ length: n }, (_, i) => String(i)));
    conn.redis.disconnect();
  });

  it('a turn over the byte bound is split too', async () => {
    const conn = await writingRedis();
    const list = `${prefix}:{bytes}:list`;
    conn.redis.defineCommand('flushTestPush', { numberOfKeys: 1, lua: "return redis.call('RPUSH', KEYS[1], ARGV[1])" });
    const flush = new BodyFlush(conn.redis, 'flushTestPush', { maxCalls: 64, maxBytes: 10_000 });
    await flush.call(list, [list, 'warm']);
    conn.reset();
    const big = 'x'.repeat(4_000);
    await Promise.all(Array.from({ length: 6 }, () => flush.call(list, [list, big])));
    // The call that crosses the bound goes in its pipeline, which is then written: 3 + 3.
    expect(conn.writes()).toBe(2);
    conn.redis.disconnect();
  });

  it('on a Cluster, calls are grouped by hash tag (one pipeline per slot); on one Redis, all together', () => {
    const single = { isCluster: false } as Redis;
    const cluster = { isCluster: true } as Redis;
    expect(slotGroup(single, 'm::frames::{app-a}::d.1')).toBe('');
    expect(slotGroup(cluster, 'm::frames::{app-a}::d.1')).toBe('app-a');
    expect(slotGroup(cluster, 'm::frames::{app-b}::{x}')).toBe('app-b');
    // Redis's rule: an empty tag is no tag, the whole key is hashed.
    expect(slotGroup(cluster, 'm::{}::{app-c}')).toBe('m::{}::{app-c}');
  });

  it('scripts gone from Redis (SCRIPT FLUSH, a failover to a fresh replica) or Redis restarted: every body of the next turn is stored', async () => {
    // A private redis-server: SCRIPT FLUSH and a restart must not touch the shared one.
    const own = restartableRedis(mkdtempSync(join(tmpdir(), 'mallet-flush-')));
    await own.start();
    try {
      const conn = await writingRedis(own.url);
      conn.redis.on('error', () => {});
      const { pipeline, metrics } = realPipeline({ redis: conn.redis, prefix, ruleSet: compiledRules(TWICE_AND_ONCE), sink: enqueue });
      const body = frame(drainLine('app', 'web.1', 'GET / 200'));
      const apps = ['ns-a', 'ns-b', 'ns-c', 'ns-d'];
      for (const app of apps) await pipeline.ingest(batchOf(app, 'W1', body));
      const direct = new Redis(own.url);
      await direct.script('FLUSH');
      // NOSCRIPT for each call of the pipeline: each is sent again (EVAL, then EVALSHA) and stored once.
      const after = await Promise.all(apps.map((app) => pipeline.ingest(batchOf(app, 'N1', body))));
      expect(after).toEqual(apps.map(() => ({ duplicate: false, lines: 1, firings: 0 })));
      direct.disconnect();
      await own.stop();
      await own.start();
      await new Promise((r) => (conn.redis.status === 'ready' ? r(null) : conn.redis.once('ready', r)));
      const restarted = await Promise.all(apps.map((app) => pipeline.ingest(batchOf(app, 'R1', body))));
      expect(restarted).toEqual(apps.map(() => ({ duplicate: false, lines: 1, firings: 0 })));
      for (const app of apps) expect(await linesOf(metrics, app)).toBe(3);
      conn.redis.disconnect();
    } finally {
      await own.stopIfRunning();
    }
  });
});
