import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing } from './Firing.js';
import type { Evaluation } from './evaluate.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { countEvaluation, evaluateEvents, finishEvaluation, livesOf, prepareEvaluation, voteOf } from './evaluate.js';
import { boundVotes } from './voteBounds.js';
import { parseThresholdReply, thresholdPart, rejectionParts, type ThresholdResult } from './thresholdScript.js';
import { part } from '../keys.js';
import type { BodyPart } from '../server/bodyScript.js';
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

  /**
   * judge() without its own round trips: the body's Redis work as parts of the drain's body script
   * (src/server/bodyScript.ts), and `finish` to read their replies, in order, into the judgement.
   * The same decisions as judge(), in the same order: the budget admits the capped votes'
   * targets (most matched lines first), then the admitted votes are cast in line order.
   * Undefined for a body that needs judge() (a predict rule matched). A body whose votes name
   * dynos first reads their lifecycle (grace, instance, a restart's fresh window): one read
   * before the script, as judge() does.
   */
  async prepareBody(events: readonly DrainEvent[]): Promise<BodyJudgement | undefined> {
    const prepared = prepareEvaluation(events, { ruleSet: this.#opts.getRuleSet(), clock: this.#clock, log: this.#log });
    if (prepared === undefined) return NOTHING_MATCHED;
    const { result, pending, rejections } = prepared;
    // A predict rule's sample needs the predictor's answer before its vote: judge() (two round trips).
    if (pending.some((p) => p.rule.predict !== undefined)) return undefined;
    const parts: BodyPart[] = [];
    const capped = boundVotes(pending, WORK_BOUNDS.maxVotesPerBody);
    const app = events[0]!.app;
    if (capped.droppedVotes > 0) (result.dropped as Evaluation['dropped'][number][]).push({ reason: 'votes-per-body', app, votes: capped.droppedVotes, targets: capped.droppedTargets });
    const kept = capped.kept;
    let targets: string[] = [];
    if (kept.length > 0) {
      const lines = new Map<string, number>();
      for (const p of pending) lines.set(p.target, (lines.get(p.target) ?? 0) + 1);
      targets = [...new Set(kept.map((p) => p.target))].sort((a, b) => lines.get(b)! - lines.get(a)!);
      let now = 0;
      for (const p of kept) if (p.time > now) now = p.time;
      parts.push({ name: 'budget', keys: [this.#opts.keys.appTargets(app)], args: [Math.trunc(now), WORK_BOUNDS.targetWindowMs, WORK_BOUNDS.maxTargetsPerApp, ...targets.map(part)] });
    }
    const gate = new Map(targets.map((t, i) => [t, i + 1]));
    const lives = this.#life && kept.length > 0 ? await livesOf(events, kept, this.#life) : undefined;
    const votes = kept.map((p, i) => voteOf(p, this.#opts.keys, lives?.[i]));
    for (let i = 0; i < votes.length; i++) parts.push({ ...thresholdPart(votes[i]!, this.#opts.keys), gate: gate.get(kept[i]!.target)! });
    for (const r of rejectionParts(rejections, this.#opts.keys)) parts.push(r);
    const store = this.#store;
    return {
      parts,
      finish: (replies) => {
        const admitted = kept.length > 0 ? (replies[0] as number[]) : [];
        const refused = targets.filter((_t, i) => admitted[i] !== 1);
        const castPending = [];
        const castVotes = [];
        const castLives = [];
        const answers: ThresholdResult[] = [];
        for (let i = 0; i < kept.length; i++) {
          const reply = replies[1 + i] as unknown[];
          if (reply[0] === 'dropped') continue;
          castPending.push(kept[i]!);
          castVotes.push(votes[i]!);
          castLives.push(lives?.[i]);
          answers.push(parseThresholdReply(reply));
        }
        if (refused.length > 0) (result.dropped as Evaluation['dropped'][number][]).push({ reason: 'targets-per-app', app, votes: kept.length - castVotes.length, targets: refused.length });
        finishEvaluation(result, castPending, castVotes, answers, {}, castLives);
        return { firings: result.firings, count: () => countEvaluation(result, this.#opts.metrics, this.#log) };
      },
      stored: () => store.registerApps(votes, rejections),
    };
  }

  /** judge() for a body that is known to be seen once: counted at once. */
  async evaluate(events: readonly DrainEvent[]): Promise<Firing[]> {
    const { firings, count } = await this.judge(events);
    count();
    return firings;
  }
}

/** A body's judgement as parts of its body script; `stored` once the script has run. */
export interface BodyJudgement {
  readonly parts: readonly BodyPart[];
  finish(replies: readonly unknown[]): Judgement;
  stored(): Promise<void>;
}

const NOTHING_MATCHED: BodyJudgement = Object.freeze({
  parts: [],
  finish: () => ({ firings: [], count: () => {} }),
  stored: async () => {},
});

export interface Judgement {
  readonly firings: Firing[];
  count(): void;
}
