import { instanceOf, withInstance } from './instance.js';
import { judgeLifecycle, type LifeAt, type LifeJudgement } from './grace.js';
import type { LifeStore } from '../dynos/instanceLife.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing, ResolvedAction } from './Firing.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { matchEvent, type RuleMatch } from './match.js';
import { resolveMatch, triggerLine } from './resolve.js';
import type { Rejection } from './rejectionScript.js';
import { HISTORY_BOUNDS } from '../console/historyLua.js';
import { truncateUtf8 } from '../truncateUtf8.js';
import { firingId } from './firingId.js';
import type { ThresholdResult, ThresholdStore, ThresholdVote } from './thresholdScript.js';
import type { ThrottledLog } from '../throttledLog.js';
import { boundVotes } from './voteBounds.js';
import type { TargetBudget } from './targetBudget.js';
import type { PredictResult, PredictStore, PredictVote } from './predictScript.js';
import { predictionText, readSample } from './predict.js';
import { seriesInstanceOf } from './instance.js';
import { eventTimeMs } from '../ingest/timestampMs.js';

export interface EvaluationDeps {
  readonly ruleSet: CompiledRuleSet;
  readonly store: ThresholdStore;
  /** The series of predict rules: Redis in the service, memory in `mallet test` / `replay`. */
  readonly predictor: PredictStore;
  readonly keys: RedisKeys;
  readonly clock: (event: DrainEvent) => number;
  /** Rate-limited per reason and app: one body of bad lines must not write a warning per line. */
  readonly log?: ThrottledLog;
  /**
   * The service's bounds on the work of one body (fold, vote cap, the app's target budget).
   * Absent in `mallet test` / `replay`, whose batches span simulated time.
   */
  readonly bounds?: { readonly maxVotesPerBody: number; readonly budget: TargetBudget };
  /**
   * The dyno lifecycle the rules read (src/rules/grace.ts): instance-exact stops for lines that name
   * no instance, `grace`, and a restart starting the window afresh. Absent: none of the three.
   */
  readonly life?: LifeStore;
  /** Told of each matched line that counted without firing (`mallet replay --explain`'s near misses). */
  readonly onCounting?: (c: { rule: string; app: string; target: string; size: number; count: number; withinMs: number; time: number }) => void;
  /** Told of each sample of a predict rule that did not predict the limit in time (replay's near misses). */
  readonly onPredicting?: (c: { rule: string; app: string; target: string; instance: string | undefined; answer: PredictResult | undefined; time: number }) => void;
}

export type DropReason = 'votes-per-body' | 'targets-per-app';

/** A firing plus the outcomes the engine itself decided (for `mallet test` / `replay` output). */
export interface Evaluation {
  readonly firings: Firing[];
  /** Matched lines per rule name. */
  readonly matched: ReadonlyMap<string, number>;
  readonly cooldowns: { rule: string; app: string; target: string; window: string }[];
  /** Matches inside their rule's grace (`start:<ms>` / `release:<ms>` spell): not counted. */
  readonly graces: { rule: string; app: string; target: string; spell: string; at: number; facts?: LifeAt }[];
  readonly rejected: { rule: string; app: string; reason: string }[];
  /** Lines cut by a work bound: `votes` lines over `targets` distinct targets. */
  readonly dropped: { reason: DropReason; app: string; votes: number; targets: number }[];
}

export interface Pending {
  readonly match: RuleMatch;
  readonly rule: RuleMatch['rule'];
  readonly target: string;
  readonly time: number;
  readonly processType: string;
  readonly actions: Firing['actions'];
  readonly triggerLine: string;
  readonly onFailure: readonly ResolvedAction[];
  /** A predict rule's forecast, for the firing and its texts. */
  readonly prediction?: string;
}

/**
 * Judges one body's events: match synchronously, then (in the service) keep the votes within the
 * body's and the app's bounds, then one threshold round trip for the votes (in line order), then
 * build the firings. The same firing reached twice in one body (a window
 * member seen again) is returned once.
 */
export async function evaluateEvents(events: readonly DrainEvent[], deps: EvaluationDeps): Promise<Evaluation> {
  const prepared = prepareEvaluation(events, deps);
  if (prepared === undefined) return emptyEvaluation();
  let { pending } = prepared;
  if (deps.bounds) pending = await withinBounds(pending, deps.bounds, prepared.result);
  // Only a body with a sample a predict rule matched pays for the predictor's round trip.
  if (pending.some((p) => p.rule.predict !== undefined)) pending = await predicted(pending, deps);
  const lives = deps.life ? await livesOf(events, pending, deps.life) : undefined;
  const votes = pending.map((p, i) => voteOf(p, deps.keys, lives?.[i]));
  const answers = await deps.store.vote(votes, prepared.rejections);
  return finishEvaluation(prepared.result, pending, votes, answers, deps, lives);
}

/** What the dyno lifecycle says of each pending vote's line (grace, its instance, since when). */
export function livesOf(events: readonly DrainEvent[], pending: readonly Pending[], life: LifeStore): Promise<(LifeJudgement | undefined)[]> {
  return judgeLifecycle(events, pending.map((p) => ({ event: p.match.event, target: p.target, time: p.time, grace: p.rule.grace })), life);
}

const emptyEvaluation = (): Evaluation => ({ firings: [], matched: new Map(), cooldowns: [], graces: [], rejected: [], dropped: [] });

/** A body's matches resolved, before any Redis: what its votes and rejections will be. */
export interface PreparedEvaluation {
  readonly result: Evaluation;
  /** The matched lines to vote for, in line order (not yet within the service's bounds). */
  readonly pending: Pending[];
  readonly rejections: readonly Rejection[];
}

/** Matches and resolves one body's events synchronously; undefined when no rule matched. */
export function prepareEvaluation(events: readonly DrainEvent[], deps: Pick<EvaluationDeps, 'ruleSet' | 'clock' | 'log'>): PreparedEvaluation | undefined {
  const { ruleSet, log } = deps;
  const matches: RuleMatch[] = [];
  for (let i = 0; i < events.length; i++) matchEvent(ruleSet.rules, events[i]!, matches);
  if (matches.length === 0) return undefined;
  const matched = new Map<string, number>();
  const result: Evaluation = { firings: [], matched, cooldowns: [], graces: [], rejected: [], dropped: [] };

  const pending: Pending[] = [];
  const rejections: Rejection[] = [];
  for (const m of matches) {
    matched.set(m.rule.name, (matched.get(m.rule.name) ?? 0) + 1);
    const r = resolveMatch(m);
    if (!r.ok) {
      log?.warn('firing-rejected', m.event.app, { rule: m.rule.name, process: m.event.process.slice(0, 64), why: r.reason }, 'firing rejected: a value from the log line has the wrong shape');
      result.rejected.push({ rule: m.rule.name, app: m.event.app, reason: r.reason });
      rejections.push({
        eventId: m.event.id, time: Math.trunc(deps.clock(m.event)), rule: m.rule.name, app: m.event.app,
        reason: truncateUtf8(r.reason, HISTORY_BOUNDS.lineBytes), recordLine: truncateUtf8(triggerLine(m), HISTORY_BOUNDS.lineBytes),
      });
      continue;
    }
    pending.push({ match: m, rule: m.rule, target: r.target, time: Math.trunc(deps.clock(m.event)), processType: r.processType, actions: r.actions, triggerLine: r.triggerLine, onFailure: r.onFailure });
  }
  return { result, pending, rejections };
}

/**
 * String(receivedAt), remembered for the last arrival time: a body's votes share it, and a time in
 * ms is past V8's small integers, so each String() was a double-to-text conversion.
 */
let lastArrival = Number.NaN;
let lastArrivalText = '';
function arrivalText(at: number): string {
  if (at !== lastArrival) {
    lastArrivalText = String(at);
    lastArrival = at;
  }
  return lastArrivalText;
}

export function voteOf({ match: { rule, event }, target, time, triggerLine }: Pending, keys: RedisKeys, life?: LifeJudgement): ThresholdVote {
  return {
    keys: keys.threshold(rule.name, event.app, target),
    eventId: event.id,
    time,
    count: rule.count,
    withinMs: rule.withinMs,
    cooldownMs: rule.cooldownMs,
    // receivedAt travels with the line so the firing knows its earliest trigger.
    line: `${arrivalText(event.receivedAt)} ${triggerLine}`,
    rule: rule.name,
    app: event.app,
    target,
    recordLine: truncateUtf8(triggerLine, HISTORY_BOUNDS.lineBytes),
    ...(life?.grace !== undefined ? { grace: life.grace } : {}),
    ...(life?.sinceMs !== undefined ? { sinceMs: life.sinceMs } : {}),
  };
}

/**
 * The votes' answers (answers[i] for pending[i]) into the body's firings and cooldowns. The same
 * firing reached twice in one body (a window member seen again) is returned once.
 */
export function finishEvaluation(result: Evaluation, pending: readonly Pending[], votes: readonly ThresholdVote[], answers: readonly ThresholdResult[], deps: Pick<EvaluationDeps, 'onCounting'>, lives?: readonly (LifeJudgement | undefined)[]): Evaluation {
  const seen = new Set<string>();
  answers.forEach((a, i) => {
    const p = pending[i]!;
    const { rule, event } = p.match;
    if (a.status === 'cooldown') {
      result.cooldowns.push({ rule: rule.name, app: event.app, target: p.target, window: a.window });
      return;
    }
    if (a.status === 'grace') {
      // The line's own time and the lifecycle facts it was judged on: what `mallet replay --explain` says.
      const facts = lives?.[i]?.facts;
      result.graces.push({ rule: rule.name, app: event.app, target: p.target, spell: a.spell, at: eventTimeMs(event), ...(facts ? { facts } : {}) });
      return;
    }
    if (a.status === 'counting') {
      deps.onCounting?.({ rule: rule.name, app: event.app, target: p.target, size: a.size, count: rule.count, withinMs: rule.withinMs, time: votes[i]!.time });
      return;
    }
    const id = firingId(rule.name, event.app, p.target, a.window);
    if (seen.has(id)) return;
    seen.add(id);
    let receivedAt = event.receivedAt;
    const triggerLines = a.lines.map((stored) => {
      const sp = stored.indexOf(' ');
      const at = Number(stored.slice(0, sp));
      if (Number.isFinite(at) && at < receivedAt) receivedAt = at;
      return stored.slice(sp + 1);
    });
    result.firings.push(Object.freeze({
      id,
      rule: rule.name,
      app: event.app,
      target: p.target,
      processType: p.processType,
      window: a.window,
      firedAt: Number(a.window),
      receivedAt,
      triggerLines: Object.freeze(triggerLines),
      actions: withInstance(p.actions, lives?.[i]?.instance ?? instanceOf(event, p.target)),
      ...(p.onFailure.length > 0 ? { onFailure: p.onFailure } : {}),
      ...(p.prediction !== undefined ? { prediction: p.prediction } : {}),
      dryRun: rule.dryRun,
    }));
  });
  return result;
}

/**
 * The matches of predict rules that go on to the threshold vote: those whose instance's fitted
 * line reaches the limit within `within` (the others only feed the series), with their actions
 * rendered again now that `{{prediction}}` is known. A line that names no instance, or lacks the
 * sample or the limit's field, is not predicted on. The series' clock is the line's own
 * timestamp, in the service as in replay.
 */
async function predicted(pending: Pending[], deps: EvaluationDeps): Promise<Pending[]> {
  const votes: PredictVote[] = [];
  const voteOf = new Map<number, number>();
  const instances: (string | undefined)[] = [];
  pending.forEach((p, i) => {
    if (p.rule.predict === undefined) return;
    const s = predictVoteOf(p, deps.keys);
    instances[i] = s.instance;
    if (s.vote === undefined) return;
    voteOf.set(i, votes.length);
    votes.push(s.vote);
  });
  const answers = votes.length > 0 ? await deps.predictor.predict(votes) : [];
  const kept: Pending[] = [];
  pending.forEach((p, i) => {
    if (p.rule.predict === undefined) {
      kept.push(p);
      return;
    }
    const v = voteOf.get(i);
    const a = v === undefined ? undefined : answers[v];
    if (a?.status !== 'reaches') {
      deps.onPredicting?.({ rule: p.rule.name, app: p.match.event.app, target: p.target, instance: instances[i], answer: a, time: p.time });
      return;
    }
    const q = withPrediction(p, a);
    if (q !== undefined) kept.push(q);
  });
  return kept;
}

/**
 * A predict rule's sample as the predictor's vote, and the instance its series is of; no vote
 * when the line names no instance, or lacks the sample or the limit's field, or a valid time.
 * The series' clock is the line's own timestamp, in the service as in replay.
 */
export function predictVoteOf(p: Pending, keys: RedisKeys): { vote?: PredictVote; instance: string | undefined } {
  const cond = p.rule.predict!;
  const e = p.match.event;
  const instance = seriesInstanceOf(e);
  const sample = p.match.fields === undefined ? undefined : readSample(cond, p.match.fields);
  const time = eventTimeMs(e);
  if (instance === undefined || sample === undefined || !Number.isFinite(time)) return { instance };
  return {
    instance,
    vote: {
      keys: keys.predict(p.rule.name, e.app, p.target), eventId: e.id, time: Math.trunc(time),
      value: sample.value, limit: sample.limit, withinMs: cond.withinMs, overMs: cond.overMs, minSamples: cond.minSamples, instance,
    },
  };
}

/**
 * A predicted sample's match with its actions rendered again now that `{{prediction}}` is known
 * (its text goes only where no shape is checked: load refuses it in keys and names).
 */
export function withPrediction(p: Pending, a: Extract<PredictResult, { status: 'reaches' }>): Pending | undefined {
  const prediction = predictionText(p.match.event.process, a.limit, a.etaMs, a.slope);
  const r = resolveMatch(p.match, prediction);
  if (!r.ok) return undefined;
  return { ...p, actions: r.actions, onFailure: r.onFailure, prediction };
}

/**
 * The body's votes after the service's bounds: folded and capped per body (voteBounds.ts), then
 * only targets the app's budget admits (targetBudget.ts, shared by replicas). What is cut is
 * recorded in `result.dropped`, counted and logged once the delivery is known to be the first.
 */
async function withinBounds(pending: Pending[], bounds: NonNullable<EvaluationDeps['bounds']>, result: Evaluation): Promise<Pending[]> {
  const capped = boundVotes(pending, bounds.maxVotesPerBody);
  const byApp = new Map<string, Pending[]>();
  for (const p of capped.kept) {
    const list = byApp.get(p.match.event.app);
    if (list) list.push(p);
    else byApp.set(p.match.event.app, [p]);
  }
  if (capped.droppedVotes > 0) {
    result.dropped.push({ reason: 'votes-per-body', app: pending[0]!.match.event.app, votes: capped.droppedVotes, targets: capped.droppedTargets });
  }
  // The budget admits new targets in the order of the cap: most matched lines first, so fan-out
  // earlier in a body cannot take the places of a storm later in it.
  const lines = new Map<string, number>();
  for (const p of pending) lines.set(p.target, (lines.get(p.target) ?? 0) + 1);
  const kept: Pending[] = [];
  for (const [app, list] of byApp) {
    const targets = [...new Set(list.map((p) => p.target))].sort((a, b) => lines.get(b)! - lines.get(a)!);
    const now = Math.max(...list.map((p) => p.time));
    const answers = await bounds.budget.admit(app, targets, now);
    const refused = new Set(targets.filter((_t, i) => !answers[i]));
    let votes = 0;
    for (const p of list) {
      if (refused.has(p.target)) votes++;
      else kept.push(p);
    }
    if (refused.size > 0) result.dropped.push({ reason: 'targets-per-app', app, votes, targets: refused.size });
  }
  // Back in the body's order: the threshold votes are cast in line order.
  if (byApp.size > 1) {
    const index = new Map(pending.map((p, i) => [p, i]));
    kept.sort((a, b) => index.get(a)! - index.get(b)!);
  }
  return kept;
}

/**
 * Adds an evaluation to `mallet_rule_matches_total` and `mallet_firings_total` (rejected,
 * cooldown). Kept apart from evaluating: a logplex retry is judged again and must not be counted again.
 */
export function countEvaluation(e: Evaluation, metrics: Metrics, log?: ThrottledLog): void {
  for (const [rule, n] of e.matched) metrics.ruleMatchesTotal.inc({ rule }, n);
  for (const r of e.rejected) metrics.firingsTotal.inc({ rule: r.rule, outcome: 'rejected' });
  for (const c of e.cooldowns) metrics.firingsTotal.inc({ rule: c.rule, outcome: 'cooldown' });
  for (const g of e.graces) metrics.firingsTotal.inc({ rule: g.rule, outcome: 'grace' });
  for (const d of e.dropped) {
    metrics.votesDroppedTotal.inc({ reason: d.reason }, d.votes);
    const why = d.reason === 'votes-per-body'
      ? 'a body matched more targets than one body may vote for'
      : 'the app has more distinct targets in play than its budget';
    log?.warn(`votes-dropped-${d.reason}`, d.app, { votes: d.votes, targets: d.targets }, `matched lines not judged: ${why}`);
  }
}
