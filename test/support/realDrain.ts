import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { redisKeys, type RedisKeys } from '../../src/keys.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { ThrottledLog } from '../../src/throttledLog.js';
import type { Firing, FiringOutcome } from '../../src/rules/Firing.js';
import type { CompiledRuleSet } from '../../src/rules/load.js';
import { cleanupPrefix, testRedis, uniquePrefix } from './redis.js';

export interface RealDrain {
  readonly url: string;
  readonly redis: ReturnType<typeof testRedis>;
  readonly prefix: string;
  readonly keys: RedisKeys;
  readonly metrics: Metrics;
  readonly ruleSet: CompiledRuleSet;
  /** Every log line written, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  readonly submitted: Firing[];
  readonly log: ThrottledLog;
  close(): Promise<void>;
}

/**
 * The drain as `serve` builds it — HTTP over loopback, the real pipeline and rules engine on real
 * Redis under a fresh prefix — with firings collected instead of queued and every log line kept.
 */
export async function startRealDrain(opts: { rules: string; password: string; env?: Record<string, string>; deadlineMs?: number }): Promise<RealDrain> {
  const loaded = loadRulesText(opts.rules, 'rules.yml', opts.env ?? {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const ruleSet = loaded.ruleSet;
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
  const redis = testRedis();
  const prefix = uniquePrefix('real');
  const keys = redisKeys(prefix);
  const metrics = createMetrics(undefined, { defaults: false });
  const log = new ThrottledLog(logger);
  const submitted: Firing[] = [];
  const sink = { async submit(f: readonly Firing[]): Promise<FiringOutcome[]> { submitted.push(...f); return f.map(() => 'enqueued'); } };
  const engine = new RulesEngine({ redis, keys, metrics, logger, log, getRuleSet: () => ruleSet });
  const pipeline = new Pipeline({ redis, keys, engine, sink, metrics, logger });
  const app: FastifyInstance = await buildApp({
    logger, metrics, redis, drainPassword: opts.password, log,
    getApps: () => ruleSet.apps, ingest: pipeline.ingest, drainDeadlineMs: opts.deadlineMs,
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url, redis, prefix, keys, metrics, ruleSet, logs, submitted, log,
    async close() {
      await app.close();
      log.flush();
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}
