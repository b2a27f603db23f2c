import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing } from './Firing.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { countEvaluation, evaluateEvents } from './evaluate.js';
import { RedisThresholdStore } from './thresholdScript.js';
import { RedisPredictStore } from './predictScript.js';
import { ThrottledLog } from '../throttledLog.js';
import { RedisTargetBudget, type TargetBudget } from './targetBudget.js';
import { WORK_BOUNDS } from './defaults.js';
import type { LifeStore } from '../dynos/instanceLife.js';

export interface RulesEngineOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Where rate-limited warnings go (default: one of its own over `logger`). */
  readonly log?: ThrottledLog;
  /** Read per body, so a hot reload takes effect on the next body. */
  readonly getRuleSet: () => CompiledRuleSet;
  /** The time a line counts at in windows and cooldowns; default: when its body arrived. */
  readonly clock?: (event: DrainEvent) => number;
  /**
   * The dyno lifecycle the rules read (instance-exact stops, grace, a restart's fresh window); the
   * dyno observer must write the same store (service.ts passes one to both). Absent: none of those.
   */
  readonly life?: LifeStore;
}

/** Judges drain events against the current rules; thresholds and cooldowns live in Redis. */
export class RulesEngine {
  readonly #opts: RulesEngineOptions;
  readonly #store: RedisThresholdStore;
  readonly #predictor: RedisPredictStore;
  readonly #clock: (event: DrainEvent) => number;
  readonly #log: ThrottledLog;
  readonly #budget: TargetBudget;
  readonly #life: LifeStore | undefined;

  constructor(opts: RulesEngineOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? new ThrottledLog(opts.logger);
    this.#budget = new RedisTargetBudget(opts.redis, (app) => opts.keys.appTargets(app), { maxTargets: WORK_BOUNDS.maxTargetsPerApp, windowMs: WORK_BOUNDS.targetWindowMs });
    this.#store = new RedisThresholdStore(opts.redis, opts.keys);
    this.#predictor = new RedisPredictStore(opts.redis);
    this.#clock = opts.clock ?? ((e) => e.receivedAt);
    this.#life = opts.life;
  }

  /**
   * The firings this body caused, and `count()` to add the body to the metrics once the caller
   * knows it is not a retry (rejects when Redis cannot answer: the drain then says 503).
   */
  async judge(events: readonly DrainEvent[]): Promise<Judgement> {
    const evaluation = await evaluateEvents(events, {
      ruleSet: this.#opts.getRuleSet(),
      store: this.#store,
      predictor: this.#predictor,
      keys: this.#opts.keys,
      clock: this.#clock,
      log: this.#log,
      bounds: { maxVotesPerBody: WORK_BOUNDS.maxVotesPerBody, budget: this.#budget },
      ...(this.#life ? { life: this.#life } : {}),
    });
    return { firings: evaluation.firings, count: () => countEvaluation(evaluation, this.#opts.metrics, this.#log) };
  }

  /** judge() for a body that is known to be seen once: counted at once. */
  async evaluate(events: readonly DrainEvent[]): Promise<Firing[]> {
    const { firings, count } = await this.judge(events);
    count();
    return firings;
  }
}

export interface Judgement {
  readonly firings: Firing[];
  count(): void;
}
