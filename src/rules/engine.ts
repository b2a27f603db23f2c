import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing, FiringAdmission } from './Firing.js';
import type { Evaluation } from './evaluate.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { countEvaluation, evaluateEvents, finishEvaluation, predictVoteOf, prepareEvaluation, voteOf, withPrediction, type Pending } from './evaluate.js';
import { lifecyclePart, lifeJudgementOf } from './graceScript.js';
import type { LifeJudgement } from './grace.js';
import { boundVotes } from './voteBounds.js';
import { mayMatch } from './match.js';
import { parseThresholdReply, thresholdPart, rejectionParts, type ThresholdResult } from './thresholdScript.js';
import { part } from '../keys.js';
import type { BodyPart } from '../bodyPart.js';
import { RedisThresholdStore } from './thresholdScript.js';
import { RedisPredictStore, parsePredictReply, predictPart } from './predictScript.js';
import { ThrottledLog } from '../throttledLog.js';
import { RedisTargetBudget, type TargetBudget } from './targetBudget.js';
import { WORK_BOUNDS } from './defaults.js';
import type { LifeStore } from '../dynos/instanceLife.js';
import { wantsDynoLine } from '../dynos/dynoLines.js';

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
   * Whether the engine could read the line: a current rule could match it (match.ts mayMatch:
   * header and byte tests only), or, with a lifecycle store, it is a dyno line the body's own
   * grace and instance judgement reads (the same prefilter as the dyno observer's).
   */
  readonly mayMatch = (event: DrainEvent): boolean =>
    mayMatch(this.#opts.getRuleSet().rules, event) || (this.#life !== undefined && wantsDynoLine(event));

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
   * targets (most matched lines first), then the admitted predict rules' samples are predicted,
   * then the lifecycle is read and each vote judged by it, then the admitted votes (a predicted
   * sample's only when it reaches the limit) are cast in line order. All in the one script call.
   * With `admission` (the sink's, Firing.ts), the votes and rejections are followed by the parts
   * that admit the firings they may make, one per rule+target+time (a predict rule's is not: its
   * forecast is made from the script's answer).
   */
  prepareBody(events: readonly DrainEvent[], admission?: FiringAdmission): BodyJudgement {
    const prepared = prepareEvaluation(events, { ruleSet: this.#opts.getRuleSet(), clock: this.#clock, log: this.#log });
    if (prepared === undefined) return NOTHING_MATCHED;
    const { result, pending, rejections } = prepared;
    const keys = this.#opts.keys;
    const parts: BodyPart[] = [];
    const capped = boundVotes(pending, WORK_BOUNDS.maxVotesPerBody);
    const app = events[0]!.app;
    const dropped = result.dropped as Evaluation['dropped'][number][];
    if (capped.droppedVotes > 0) dropped.push({ reason: 'votes-per-body', app, votes: capped.droppedVotes, targets: capped.droppedTargets });
    const kept = capped.kept;
    let targets: string[] = [];
    const gate = new Map<string, number>();
    if (kept.length > 0) {
      const lines = new Map<string, number>();
      for (const p of pending) lines.set(p.target, (lines.get(p.target) ?? 0) + 1);
      targets = [...new Set(kept.map((p) => p.target))].sort((a, b) => lines.get(b)! - lines.get(a)!);
      let now = 0;
      for (const p of kept) if (p.time > now) now = p.time;
      parts.push({ name: 'budget', keys: [keys.appTargets(app)], args: [Math.trunc(now), WORK_BOUNDS.targetWindowMs, WORK_BOUNDS.maxTargetsPerApp, ...targets.map(part)] });
      for (let i = 0; i < targets.length; i++) gate.set(targets[i]!, i + 1);
    }
    // A predict rule's sample: its prediction first (a part of its own, gated by the budget), and
    // its vote only when that reaches the limit. One that cannot be predicted on is not voted.
    const predictAt: number[] = kept.map(() => 0);
    let voted: Pending[] = kept;
    if (kept.some((p) => p.rule.predict !== undefined)) {
      voted = [];
      for (let i = 0; i < kept.length; i++) {
        const p = kept[i]!;
        if (p.rule.predict === undefined) {
          voted.push(p);
          continue;
        }
        const { vote } = predictVoteOf(p, keys);
        if (vote === undefined) continue;
        // Named fields, not a spread of predictPart's object: each spread copy had a map (hidden
        // class) of its own (4 917 maps for 4 972 parts of the syslog bench), so every read of a
        // part's fields in encodeBody missed V8's caches (a runtime lookup each, ~13 % of the
        // encoding's instructions).
        const pp = predictPart(vote);
        parts.push({ name: pp.name, keys: pp.keys, args: pp.args, gate: gate.get(p.target)! });
        predictAt[voted.length] = parts.length;
        voted.push(p);
      }
    }
    const life = this.#life && voted.length > 0
      ? lifecyclePart(events, voted.map((p, i) => ({ event: p.match.event, target: p.target, time: p.time, grace: p.rule.grace, predicted: predictAt[i]! })), keys)
      : undefined;
    let livesAt = 0;
    if (life !== undefined) {
      parts.push({ name: 'lives', keys: life.keys, args: life.args });
      livesAt = parts.length;
    }
    const votes = voted.map((p) => voteOf(p, keys));
    const votesAt = parts.length;
    for (let i = 0; i < votes.length; i++) {
      const t = thresholdPart(votes[i]!, keys);
      parts.push({ name: 'threshold', keys: t.keys, args: t.args, gate: gate.get(voted[i]!.target)!, predicted: predictAt[i]!, life: life?.slots[i] ?? 0 });
    }
    for (const r of rejectionParts(rejections, keys)) parts.push(r);
    const admitAt = parts.length;
    const admits: { read(reply: unknown): void }[] = [];
    if (admission !== undefined) {
      // The votes of one rule+target at one time can make one firing of their own window.
      const asked = new Set<string>();
      for (let i = 0; i < votes.length; i++) {
        if (predictAt[i]! > 0) continue;
        const v = votes[i]!;
        const window = Math.trunc(v.time);
        const id = `${v.rule}\0${v.target}\0${window}`;
        if (asked.has(id)) continue;
        asked.add(id);
        const a = admission.part({ rule: v.rule, app: v.app, target: v.target, window, dryRun: voted[i]!.rule.dryRun });
        parts.push(a.part);
        admits.push(a);
      }
    }
    const store = this.#store;
    return {
      parts,
      finish: (replies) => {
        for (let j = 0; j < admits.length; j++) admits[j]!.read(replies[admitAt + j]);
        const admitted = kept.length > 0 ? (replies[0] as number[]) : [];
        let refusedVotes = 0;
        let refusedTargets = 0;
        for (let i = 0; i < targets.length; i++) if (admitted[i] !== 1) refusedTargets++;
        if (refusedTargets > 0) for (const p of kept) if (admitted[gate.get(p.target)! - 1] !== 1) refusedVotes++;
        const lives = livesAt > 0 ? livesOfReply(replies[livesAt - 1]) : undefined;
        const castPending: Pending[] = [];
        const castVotes = [];
        const castLives: (LifeJudgement | undefined)[] = [];
        const answers: ThresholdResult[] = [];
        for (let i = 0; i < voted.length; i++) {
          const reply = replies[votesAt + i] as unknown[];
          if (reply[0] === 'dropped' || reply[0] === 'unpredicted') continue;
          let p = voted[i]!;
          if (predictAt[i]! > 0) {
            const a = parsePredictReply(replies[predictAt[i]! - 1]);
            // 'reaches', or the script would not have cast the vote.
            if (a.status !== 'reaches') throw new Error('body script: a vote cast for a sample that was not predicted');
            const q = withPrediction(p, a);
            if (q === undefined) continue;
            p = q;
          }
          castPending.push(p);
          castVotes.push(votes[i]!);
          castLives.push(lives === undefined ? undefined : lifeJudgementOf(lives, life!.slots[i]!));
          answers.push(parseThresholdReply(reply));
        }
        if (refusedTargets > 0) dropped.push({ reason: 'targets-per-app', app, votes: refusedVotes, targets: refusedTargets });
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

/** The lives part's reply: the body script joins its values by NUL into one string (bodyScript.ts). */
function livesOfReply(reply: unknown): string[] {
  return typeof reply === 'string' ? reply.split('\0') : (reply as string[]);
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
