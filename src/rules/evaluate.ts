import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing, ResolvedAction } from './Firing.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { matchEvent, type RuleMatch } from './match.js';
import { resolveMatch } from './resolve.js';
import { firingId } from './firingId.js';
import type { ThresholdStore, ThresholdVote } from './thresholdScript.js';

export interface EvaluationDeps {
  readonly ruleSet: CompiledRuleSet;
  readonly store: ThresholdStore;
  readonly keys: RedisKeys;
  readonly clock: (event: DrainEvent) => number;
  readonly logger?: Logger;
}

/** A firing plus the outcomes the engine itself decided (for `mallet test` / `replay` output). */
export interface Evaluation {
  readonly firings: Firing[];
  /** Matched lines per rule name. */
  readonly matched: ReadonlyMap<string, number>;
  readonly cooldowns: { rule: string; app: string; target: string; window: string }[];
  readonly rejected: { rule: string; app: string; reason: string }[];
}

interface Pending {
  readonly match: RuleMatch;
  readonly target: string;
  readonly processType: string;
  readonly actions: Firing['actions'];
  readonly onFailure: readonly ResolvedAction[];
}

/**
 * Judges one body's events: match synchronously, then one threshold round trip for every matched
 * line (in order), then build the firings. The same firing reached twice in one body (a window
 * member seen again) is returned once.
 */
export async function evaluateEvents(events: readonly DrainEvent[], deps: EvaluationDeps): Promise<Evaluation> {
  const { ruleSet, keys, logger } = deps;
  const matches: RuleMatch[] = [];
  for (let i = 0; i < events.length; i++) matchEvent(ruleSet.rules, events[i]!, matches);
  const matched = new Map<string, number>();
  const result: Evaluation = { firings: [], matched, cooldowns: [], rejected: [] };
  if (matches.length === 0) return result;

  const pending: Pending[] = [];
  const votes: ThresholdVote[] = [];
  for (const m of matches) {
    matched.set(m.rule.name, (matched.get(m.rule.name) ?? 0) + 1);
    const r = resolveMatch(m);
    if (!r.ok) {
      logger?.warn({ rule: m.rule.name, app: m.event.app, process: m.event.process.slice(0, 64), reason: r.reason }, 'firing rejected: a value from the log line has the wrong shape');
      result.rejected.push({ rule: m.rule.name, app: m.event.app, reason: r.reason });
      continue;
    }
    pending.push({ match: m, target: r.target, processType: r.processType, actions: r.actions, onFailure: r.onFailure });
    const { rule, event } = m;
    votes.push({
      keys: keys.threshold(rule.name, event.app, r.target),
      eventId: event.id,
      time: Math.trunc(deps.clock(event)),
      count: rule.count,
      withinMs: rule.withinMs,
      cooldownMs: rule.cooldownMs,
      // receivedAt travels with the line so the firing knows its earliest trigger.
      line: `${event.receivedAt} ${r.triggerLine}`,
    });
  }

  const answers = await deps.store.vote(votes);
  const seen = new Set<string>();
  answers.forEach((a, i) => {
    const p = pending[i]!;
    const { rule, event } = p.match;
    if (a.status === 'cooldown') {
      result.cooldowns.push({ rule: rule.name, app: event.app, target: p.target, window: a.window });
      return;
    }
    if (a.status !== 'fired') return;
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
      actions: p.actions,
      ...(p.onFailure.length > 0 ? { onFailure: p.onFailure } : {}),
      dryRun: rule.dryRun,
    }));
  });
  return result;
}

/**
 * Adds an evaluation to `mallet_rule_matches_total` and `mallet_firings_total` (rejected,
 * cooldown). Kept apart from evaluating: a logplex retry is judged again and must not be counted again.
 */
export function countEvaluation(e: Evaluation, metrics: Metrics): void {
  for (const [rule, n] of e.matched) metrics.ruleMatchesTotal.inc({ rule }, n);
  for (const r of e.rejected) metrics.firingsTotal.inc({ rule: r.rule, outcome: 'rejected' });
  for (const c of e.cooldowns) metrics.firingsTotal.inc({ rule: c.rule, outcome: 'cooldown' });
}
