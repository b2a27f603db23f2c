import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { SuspectStore } from '../dynos/SuspectStore.js';
import type { RedisKeys } from '../keys.js';
import type { Limits } from '../rules/RuleSet.js';
import { createSidekiqStopExecutor } from './executors/sidekiqStop.js';
import { startActionWorker, type ActionWorker, type ActionWorkerOptions, type WorkerMetrics } from './worker.js';

/** What the worker reads of the rules, at each step (a reload applies to queued jobs). */
export interface WorkerRulesView {
  readonly limits: Limits;
  readonly apps?: ReadonlyMap<string, { readonly redisUrlRef?: string; readonly herokuTokenRef?: string }>;
}

/**
 * The action worker as the service runs it, on its own event loop (`mallet worker`) or in its
 * thread (`mallet serve`): one wiring, so the two placements cannot drift apart.
 */
export function startConfiguredWorker(o: {
  config: Config;
  connection: Redis;
  keys: RedisKeys;
  metrics: WorkerMetrics;
  logger: ActionWorkerOptions['logger'];
  rules: () => WorkerRulesView;
  suspects: SuspectStore;
}): ActionWorker {
  const { config } = o;
  return startActionWorker({
    connection: o.connection,
    queuePrefix: config.queuePrefix,
    keys: o.keys,
    metrics: o.metrics,
    logger: o.logger,
    env: config.env,
    herokuApiUrl: config.herokuApiUrl,
    herokuApiToken: config.herokuApiToken,
    getLimits: () => o.rules().limits,
    getAppRedisRef: (app) => o.rules().apps?.get(app)?.redisUrlRef,
    getAppHerokuTokenRef: (app) => o.rules().apps?.get(app)?.herokuTokenRef,
    redisTlsInsecure: config.redisTlsInsecure,
    executors: [createSidekiqStopExecutor({ suspects: o.suspects })],
  });
}
