import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { redisKeys } from '../../src/keys.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { loadRules, type CompiledRuleSet } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import type { Firing, FiringOutcome } from '../../src/rules/Firing.js';
import { buildApp } from '../../src/server/app.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { REPO } from '../support/malletProcess.js';
import { testRedis, uniquePrefix } from '../support/redis.js';

/**
 * The drain surface under attack: the real app, pipeline and rules engine with the example rules,
 * thresholds in the shared Redis under a private prefix; events are recorded per frame id (what
 * each body delivered) before the engine judges them, and firings are collected, not executed.
 */
export interface HostileService {
  readonly url: string;
  readonly password: string;
  readonly prefix: string;
  readonly redis: ReturnType<typeof testRedis>;
  readonly metrics: Metrics;
  readonly app: FastifyInstance;
  readonly ruleSet: CompiledRuleSet;
  /** Frame id → the events that body delivered. */
  readonly events: Map<string, DrainEvent[]>;
  readonly firings: Firing[];
  close(): Promise<void>;
}

export async function startHostileService(): Promise<HostileService> {
  const redis = testRedis();
  const prefix = uniquePrefix('hostile');
  const keys = redisKeys(prefix, `${prefix}-q`);
  const metrics = createMetrics(undefined, { defaults: false });
  const logger = pino({ level: 'silent' });
  const loaded = await loadRules(`${REPO}/config/rules.example.yml`, {});
  if (!loaded.ok) throw new Error('example rules do not load');
  const ruleSet = loaded.ruleSet;
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet });
  const events = new Map<string, DrainEvent[]>();
  const firings: Firing[] = [];
  const pipeline = new Pipeline({
    redis, keys, metrics, logger,
    engine: {
      judge(batch) {
        const id = batch[0]?.id.split(':')[1];
        if (id !== undefined) events.set(id, batch.map((e) => ({ id: e.id, app: e.app, receivedAt: e.receivedAt, timestamp: e.timestamp, source: e.source, process: e.process, message: e.message })));
        return engine.judge(batch);
      },
    },
    sink: { async submit(f: readonly Firing[]): Promise<FiringOutcome[]> { firings.push(...f); return f.map(() => 'enqueued'); } },
  });
  const password = `hostile-${prefix}`;
  const app = await buildApp({ logger, metrics, redis, drainPassword: password, getApps: () => undefined, ingest: pipeline.ingest });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url, password, prefix, redis, metrics, app, ruleSet, events, firings,
    close: async () => { await app.close(); },
  };
}
