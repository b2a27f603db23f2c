import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';
import type { CompiledRuleSet } from '../rules/CompiledRule.js';
import { formatDuration } from '../rules/formatDuration.js';
import { processTypeOf } from '../rules/shapes.js';
import { firingId } from '../rules/firingId.js';
import { readHistory, type FiringRecord } from './history.js';
import { silenceMatcher, type Silence } from './Silence.js';
import { parsePredictLast, PREDICT_LAST_FIELD, type PredictResult } from '../rules/predictScript.js';
import { RedisLifeStore } from '../dynos/lifeScript.js';
import { fromHerokuLogsLine } from '../ingest/herokuLogsLine.js';
import { graceVerdict, hasLifecycle, lineMatch, type GraceVerdict } from './graceVerdict.js';

/**
 * "Why did (or didn't) rule R act on target T?" answered from the state the engine itself
 * decides on: the threshold window, the cooldown, the app's storm guard, the target's flapping
 * count, the rolling slots of its process type, the silences, and the last decisions recorded.
 */
export interface Explanation {
  readonly rule: string;
  readonly app: string;
  readonly target: string;
  readonly now: number;
  /** What stands between the target and an action, in one word (`held`/`flapping`: what the next firing would be). */
  readonly verdict: 'unknown-rule' | 'grace' | 'silenced' | 'cooldown' | 'flapping' | 'held' | 'counting';
  /** The short condition, in words ("2 of 3 matches within 90s; next needed before 03:14:10"). */
  readonly summary: string;
  readonly threshold?: { readonly count: number; readonly withinMs: number; readonly inWindow: number; readonly oldestAt?: number; readonly neededBefore?: number };
  readonly cooldown?: { readonly cooldownMs: number; readonly active: boolean; readonly firedAt?: number; readonly until?: number; readonly remainingMs?: number; readonly job?: string };
  readonly stormGuard: { readonly firings: number; readonly max: number; readonly withinMs: number; readonly tripped: boolean };
  readonly flapping: { readonly firings: number; readonly max: number; readonly withinMs: number; readonly tripped: boolean };
  readonly rolling: { readonly processType: string; readonly concurrency: number; readonly jobs: readonly string[] };
  readonly silences: readonly Silence[];
  readonly recent: readonly FiringRecord[];
  /** A predict rule: its last answer for the target (the instance's fit at its last sample). */
  readonly prediction?: PredictionState;
  /** A rule with `grace:`: what the dyno lifecycle says of a match now and of the line asked about. */
  readonly grace?: GraceState;
}

export interface GraceState {
  readonly afterStartMs: number;
  readonly afterReleaseMs: number;
  /** Why grace cannot apply to this target at all (not a Cedar dyno name); then no verdicts. */
  readonly never?: string;
  /** A match of the target arriving now (it names no instance, as an R14 does not). */
  readonly now?: GraceVerdict;
  /**
   * The line asked about (`--line`, else the line of the last decision recorded for the target):
   * its verdict, or why it is not judged (it does not match, another target, no timestamp).
   */
  readonly line?: { readonly text: string; readonly from: 'given' | 'last decision'; readonly verdict?: GraceVerdict; readonly notJudged?: string };
}

export interface PredictionState {
  readonly withinMs: number;
  readonly overMs: number;
  readonly minSamples: number;
  /** Absent when no sample of the target is known (none within `over`, or never). */
  readonly last?: { readonly instance: string; readonly at: number; readonly answer: PredictResult };
}

export async function explain(
  redis: Redis, keys: RedisKeys, ruleSet: CompiledRuleSet, silences: readonly Silence[],
  q: { rule: string; app: string; target: string; line?: string }, now: number,
): Promise<Explanation> {
  const rule = ruleSet.rules.find((r) => r.name === q.rule);
  const limits = ruleSet.limits;
  const t = keys.threshold(q.rule, q.app, q.target);
  const processType = processTypeOf(q.target);
  const withinMs = rule?.withinMs ?? 0;
  const p = redis.pipeline()
    .zrangebyscore(t.window, `(${now - withinMs}`, '+inf', 'WITHSCORES')
    .get(t.cooldown)
    .zcount(keys.stormGuard(q.app), `(${now - limits.perApp.withinMs}`, '+inf')
    .zcount(keys.flapping(q.app, q.target), `(${now - limits.flapping.withinMs}`, '+inf')
    .zrangebyscore(keys.rolling(q.app, processType), `(${now}`, '+inf')
    .hgetBuffer(keys.predict(q.rule, q.app, q.target).state, PREDICT_LAST_FIELD);
  const replies = (await p.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
  const [windowFlat, cool, storm, flap, rolling, lastPrediction] = replies.map((r) => r[1]) as [string[], string | null, number, number, string[], Buffer | null];
  const recent = (await readHistory(redis, keys, { app: q.app, rule: q.rule, target: q.target, limit: 10 })).records;

  const covering = silences.filter((s) => silenceMatcher([s], now)({ app: q.app, rule: q.rule, target: q.target }));
  const stormGuard = { firings: storm, max: limits.perApp.maxFirings, withinMs: limits.perApp.withinMs, tripped: storm >= limits.perApp.maxFirings };
  const flapping = { firings: flap, max: limits.flapping.maxFirings, withinMs: limits.flapping.withinMs, tripped: flap >= limits.flapping.maxFirings };
  const base = {
    rule: q.rule, app: q.app, target: q.target, now, stormGuard, flapping,
    rolling: { processType, concurrency: limits.perProcessType.concurrency, jobs: rolling },
    silences: covering, recent,
  };
  if (!rule) return { ...base, verdict: 'unknown-rule', summary: `no rule named ${q.rule} in the rules in force (${ruleSet.rules.map((r) => r.name).join(', ') || 'none'})` };

  const times: number[] = [];
  for (let i = 1; i < windowFlat.length; i += 2) times.push(Number(windowFlat[i]));
  const oldestAt = times.length ? Math.min(...times) : undefined;
  const threshold = {
    count: rule.count, withinMs: rule.withinMs, inWindow: times.length,
    ...(oldestAt !== undefined ? { oldestAt, neededBefore: oldestAt + rule.withinMs } : {}),
  };
  let cooldown: NonNullable<Explanation['cooldown']> = { cooldownMs: rule.cooldownMs, active: false };
  if (cool) {
    const [w = '', untilText = ''] = cool.split(':');
    const until = Number(untilText);
    if (now < until) cooldown = { cooldownMs: rule.cooldownMs, active: true, firedAt: Number(w), until, remainingMs: until - now, job: firingId(q.rule, q.app, q.target, w) };
  }
  const prediction = rule.predict ? predictionState(rule.predict, lastPrediction) : undefined;
  const grace = rule.grace ? await graceState(redis, keys, rule, q, now, recent[0]?.line) : undefined;
  const all = { ...base, threshold, cooldown, ...(prediction ? { prediction } : {}), ...(grace ? { grace } : {}) };
  const windowText = `${threshold.inWindow} of ${rule.count} match${rule.count === 1 ? '' : 'es'} within ${formatDuration(rule.withinMs)}`;
  // The threshold script judges grace first: a line in grace is neither cooled down nor counted.
  if (grace?.now?.inGrace) return { ...all, verdict: 'grace', summary: `a match now is in its grace: ${grace.now.text}` };
  if (covering.length > 0) {
    const s = covering[0]!;
    return { ...all, verdict: 'silenced', summary: `silenced by ${s.id} until ${clock(s.endsAt)} (${s.comment}): a firing is recorded as silenced and runs nothing` };
  }
  if (cooldown.active) {
    return { ...all, verdict: 'cooldown', summary: `in cooldown after the firing at ${clock(cooldown.firedAt!)} until ${clock(cooldown.until!)} (${human(cooldown.remainingMs!)} left): matching lines are counted as cooldown, nothing fires` };
  }
  if (prediction) return { ...all, verdict: 'counting', summary: predictionSummary(prediction, q.target) };
  const more = rule.count - threshold.inWindow;
  const when = threshold.neededBefore !== undefined ? `; next needed before ${clock(threshold.neededBefore)}` : '';
  const short = `${windowText}${when} (${more} more needed)`;
  // What the limits would do with the firing the next match makes.
  if (more === 1 && flapping.tripped) {
    return { ...all, verdict: 'flapping', summary: `${short}; when it fires, ${q.target} is left alone: it fired ${flap} times within ${formatDuration(flapping.withinMs)} (limits.flapping: ${flapping.max})` };
  }
  if (more === 1 && stormGuard.tripped) {
    return { ...all, verdict: 'held', summary: `${short}; when it fires, its actions are held: ${q.app} had ${storm} firings within ${formatDuration(stormGuard.withinMs)} (limits.per_app: ${stormGuard.max})` };
  }
  const slots = more === 1 && rolling.length >= limits.perProcessType.concurrency ? `; when it fires, it waits its turn: every ${processType} slot is taken (${rolling.join(', ')})` : '';
  return { ...all, verdict: 'counting', summary: short + slots };
}

/** The lifecycle as the engine reads it (one HMGET), judged by the engine's own grace code. */
async function graceState(
  redis: Redis, keys: RedisKeys, rule: CompiledRuleSet['rules'][number], q: { app: string; target: string; line?: string }, now: number, lastLine: string | undefined,
): Promise<GraceState> {
  const g = rule.grace!;
  const base = { afterStartMs: g.afterStartMs, afterReleaseMs: g.afterReleaseMs };
  if (!hasLifecycle(q.target)) return { ...base, never: `${q.target} is not a Cedar dyno name (web.1): it has no lifecycle, so grace never applies` };
  const life = await new RedisLifeStore(redis, keys).read(q.app, [q.target]);
  const text = q.line ?? lastLine;
  let line: GraceState['line'];
  if (text !== undefined) {
    const from = q.line !== undefined ? 'given' : 'last decision';
    const m = lineMatch(rule, fromHerokuLogsLine(text, q.app, 'explain'), q.target);
    line = m.matches
      ? { text, from, verdict: graceVerdict(life, g, q.target, m.time, m.instance, 'line') }
      : { text, from, notJudged: m.reason };
  }
  return { ...base, now: graceVerdict(life, g, q.target, now, undefined, 'now'), ...(line ? { line } : {}) };
}

function predictionState(p: NonNullable<CompiledRuleSet['rules'][number]['predict']>, raw: Buffer | null): PredictionState {
  const base = { withinMs: p.withinMs, overMs: p.overMs, minSamples: p.minSamples };
  if (raw === null) return base;
  try {
    // Packed since the reply became integers; JSON before (still read, until it expires).
    return { ...base, last: parsePredictLast(raw) };
  } catch {
    return base;
  }
}

/** A predict rule's state in words: what its line says, and what is missing before it fires. */
function predictionSummary(p: PredictionState, target: string): string {
  const need = `reaching the limit within ${formatDuration(p.withinMs)}`;
  if (!p.last) return `no sample of ${target} within the last ${formatDuration(p.overMs)}: nothing to fit (a predict rule needs ${p.minSamples} samples of one instance)`;
  const a = p.last.answer;
  const of = `instance ${p.last.instance}, last sample at ${clock(p.last.at)}`;
  if (a.status === 'few') return `${a.samples} of ${p.minSamples} samples within ${formatDuration(p.overMs)} (${of}): too few to fit a line`;
  const line = `${a.samples} samples, ${Math.round(a.fitted)} MB rising ${Math.round(a.slope * 10) / 10} MB/h (${of})`;
  if (a.status === 'reaches') return `${line}: reaches ${Math.round(a.limit)} MB in ${human(a.etaMs)}, ${need}: the next matching sample fires (or meets the cooldown)`;
  if (a.etaMs === undefined) return `${line}: not rising, so never predicted to reach ${Math.round(a.limit)} MB (fires on ${need})`;
  return `${line}: reaches ${Math.round(a.limit)} MB in ${human(a.etaMs)}, later than ${formatDuration(p.withinMs)}: not yet`;
}

function graceRows(g: GraceState): string[] {
  if (g.never !== undefined) return [`grace       ${g.never}`];
  const rows = g.now ? [`grace now   ${g.now.text}`] : [];
  if (g.line) {
    // A log line is the sender's text: no control characters reach the operator's terminal.
    const clean = g.line.text.replace(/\p{Cc}/gu, '?');
    const shown = clean.length > 160 ? `${clean.slice(0, 160)}…` : clean;
    rows.push(`line        ${shown}${g.line.from === 'last decision' ? '  (the last decision\'s line)' : ''}`);
    rows.push(`grace line  ${g.line.verdict ? g.line.verdict.text : `not judged: ${g.line.notJudged}`}`);
  }
  return rows;
}

/** HH:MM:SS in UTC: the operator reads it next to Heroku's log times, which are UTC. */
export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function human(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
}

/** The explanation as the CLI prints it. */
export function explainText(e: Explanation): string {
  const lines = [`${e.rule} on ${e.app} ${e.target}: ${e.summary}`, ''];
  if (e.prediction) lines.push(`predict     ${predictionSummary(e.prediction, e.target)}`);
  if (e.grace) lines.push(...graceRows(e.grace));
  if (e.threshold) {
    lines.push(`threshold   ${e.threshold.inWindow}/${e.threshold.count} matches within ${formatDuration(e.threshold.withinMs)}${e.threshold.oldestAt !== undefined ? ` (oldest at ${clock(e.threshold.oldestAt)}, counts until ${clock(e.threshold.neededBefore!)})` : ''}`);
  }
  if (e.cooldown) {
    lines.push(`cooldown    ${e.cooldown.active ? `until ${clock(e.cooldown.until!)} (${human(e.cooldown.remainingMs!)} left; fired at ${clock(e.cooldown.firedAt!)}${e.cooldown.job ? `, job ${e.cooldown.job}` : ''})` : `none (${formatDuration(e.cooldown.cooldownMs)} after a firing)`}`);
  }
  lines.push(`storm guard ${e.app}: ${e.stormGuard.firings}/${e.stormGuard.max} firings within ${formatDuration(e.stormGuard.withinMs)}${e.stormGuard.tripped ? ' — tripped: firings are held' : ''}`);
  lines.push(`flapping    ${e.target}: ${e.flapping.firings}/${e.flapping.max} firings within ${formatDuration(e.flapping.withinMs)}${e.flapping.tripped ? ' — tripped: left alone' : ''}`);
  lines.push(`rolling     ${e.rolling.processType}: ${e.rolling.jobs.length}/${e.rolling.concurrency} slots held${e.rolling.jobs.length ? ` (${e.rolling.jobs.join(', ')})` : ''}`);
  lines.push(`silences    ${e.silences.length ? e.silences.map((s) => `${s.id} until ${new Date(s.endsAt).toISOString()} (${s.comment})`).join('; ') : 'none'}`);
  lines.push('', e.recent.length ? 'last decisions:' : 'last decisions: none recorded');
  for (const r of e.recent) {
    lines.push(`  ${new Date(r.at).toISOString()}  ${r.outcome.padEnd(9)}${r.count > 1 ? ` ×${r.count} (to ${clock(r.last)})` : ''}${r.job ? `  job ${r.job}` : ''}${r.reason ? `  ${r.reason}` : ''}${r.prediction ? `  ${r.prediction}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
