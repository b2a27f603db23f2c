import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionQueue } from '../../src/actions/queue.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DEFAULT_LIMITS } from '../../src/rules/RuleSet.js';
import { startOwnRedisServer, type OwnRedisServer } from '../support/ownRedisServer.js';
import { makeFiring } from './harness.js';

/**
 * Scripts gone from Redis (SCRIPT FLUSH, a failover to a replica that never loaded them) while the
 * queue's connection still thinks them loaded: the job adds go out as EVALSHA in the submit's
 * pipeline and get NOSCRIPT. ioredis 6 sends such a script command again by itself (as EVAL, on
 * the same connection, after the pipeline's other commands), and the pipeline's reply is the
 * resent command's, so the submit never sees NOSCRIPT. A private redis-server: SCRIPT FLUSH must
 * never touch the shared one.
 */
let server: OwnRedisServer;
let admin: Redis;
beforeAll(async () => {
  server = await startOwnRedisServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

function queue(connection: Redis): ActionQueue {
  return new ActionQueue({
    connection, queuePrefix: 'noscript-q', keys: redisKeys('noscript'), metrics: createMetrics(undefined, { defaults: false }),
    logger: pino({ level: 'silent' }), dryRun: false, backoffMs: 50,
    getLimits: () => ({ ...DEFAULT_LIMITS, perApp: { maxFirings: 100, withinMs: 600_000 }, flapping: { maxFirings: 100, withinMs: 3_600_000 } }),
  });
}

const stop = (target: string) => ({ type: 'redis-stop-key' as const, key: `noscript:puma::stop::${target}`, value: '1', ttlMs: 60_000 });

describe('action queue: scripts flushed from Redis', () => {
  it('after SCRIPT FLUSH a submit stores its jobs (each once), a repeat is a duplicate, and so is the loser of a race', async () => {
    const connection = new Redis(server.url, { maxRetriesPerRequest: null });
    const a = queue(connection);
    const b = queue(connection);
    try {
      // Scripts loaded on both queues' connections.
      expect(await a.submit([makeFiring({ target: 'web.1', actions: [stop('web.1')] })])).toEqual(['enqueued']);
      expect(await b.submit([makeFiring({ target: 'web.2', actions: [stop('web.2')] })])).toEqual(['enqueued']);
      const stat = async (name: string, field: string) => Number(new RegExp(`cmdstat_${name}:.*\\b${field}=(\\d+)`).exec(await admin.info('commandstats'))?.[1] ?? 0);

      expect(await admin.script('FLUSH')).toBe('OK');
      const fresh = [makeFiring({ target: 'web.3', actions: [stop('web.3')] }), makeFiring({ target: 'web.4', actions: [stop('web.4')] })];
      const [failedBefore, evalBefore] = [await stat('evalsha', 'failed_calls'), await stat('eval', 'calls')];
      expect(await a.submit(fresh)).toEqual(['enqueued', 'enqueued']);
      // The adds (and the admissions) went out as EVALSHA and failed (NOSCRIPT: the scripts were gone), then as EVAL.
      expect(await stat('evalsha', 'failed_calls')).toBeGreaterThanOrEqual(failedBefore + 2);
      expect(await stat('eval', 'calls')).toBeGreaterThan(evalBefore);
      expect(await a.queue.getJobCountByTypes('waiting', 'delayed')).toBe(4);
      expect(await a.submit(fresh)).toEqual(['duplicate', 'duplicate']);

      // Two submits of one firing racing after a flush: one job, and one of them told duplicate.
      for (let i = 0; i < 20; i++) {
        await admin.script('FLUSH');
        const raced = makeFiring({ target: `web.${10 + i}`, actions: [stop(`web.${10 + i}`)] });
        const outcomes = (await Promise.all([a.submit([raced]), b.submit([raced])])).flat();
        expect(outcomes.sort()).toEqual(['duplicate', 'enqueued']);
      }
      expect(await a.queue.getJobCountByTypes('waiting', 'delayed')).toBe(24);
    } finally {
      await a.close();
      await b.close();
      connection.disconnect();
    }
  }, 30_000);
});
