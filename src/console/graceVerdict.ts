import type { AppLife } from '../dynos/instanceLife.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import { timestampMs } from '../ingest/timestampMs.js';
import type { CompiledRule, RuleGrace } from '../rules/CompiledRule.js';
import { formatDuration } from '../rules/formatDuration.js';
import { hasLifecycle, lifeAt, type LifeAt } from '../rules/grace.js';
import { instanceOf } from '../rules/instance.js';
import { matchEvent, type RuleMatch } from '../rules/match.js';
import { resolveMatch } from '../rules/resolve.js';

/**
 * The grace verdict of one matched line, in the engine's own terms (src/rules/grace.ts decides it
 * for the service, `mallet test` and `mallet replay`; this only keeps the facts it decided on, to
 * say them): the instance, its start, the app's last release, and the spell the line is in.
 */
export interface GraceVerdict {
  /** The line's own time (or, for `of: 'now'`, the time asked about). */
  readonly at: number;
  readonly of: 'line' | 'now';
  readonly afterStartMs: number;
  readonly afterReleaseMs: number;
  readonly instance?: string;
  /** The line names its instance (else the instance was attributed to it, and the start is the dyno name's newest). */
  readonly instanceNamed?: boolean;
  readonly start?: number;
  readonly release?: number;
  /** `start:<ms>` / `release:<ms>`: counted as grace; absent: counted toward the threshold. */
  readonly spell?: string;
  readonly inGrace: boolean;
  /** The verdict in one sentence. */
  readonly text: string;
}

/** The verdict for a line of `target` at `t` (named: the instance the line itself names). */
export function graceVerdict(life: AppLife, grace: RuleGrace, target: string, t: number, named: string | undefined, of: 'line' | 'now'): GraceVerdict {
  const at = lifeAt(life, target, t, named, grace);
  return verdictOf(target, grace, t, of, at.grace, at);
}

/**
 * The verdict for a line the engine has judged (`mallet replay`): from the spell it answered and the
 * lifecycle facts it was judged on, so the words cannot disagree with the decision.
 */
export function graceVerdictOf(grace: RuleGrace, target: string, t: number, spell: string | undefined, facts: LifeAt | undefined): GraceVerdict {
  return verdictOf(target, grace, t, 'line', spell, facts ?? {});
}

function verdictOf(target: string, g: RuleGrace, t: number, of: 'line' | 'now', spell: string | undefined, facts: LifeAt): GraceVerdict {
  const v = {
    at: t, of, afterStartMs: g.afterStartMs, afterReleaseMs: g.afterReleaseMs,
    ...(facts.instance !== undefined ? { instance: facts.instance, instanceNamed: facts.named === true } : {}),
    ...(facts.start !== undefined ? { start: facts.start } : {}),
    ...(facts.release !== undefined ? { release: facts.release } : {}),
    ...(spell !== undefined ? { spell } : {}),
    inGrace: spell !== undefined,
  };
  return { ...v, text: verdictText(target, v) };
}

function verdictText(target: string, v: Omit<GraceVerdict, 'text'>): string {
  const before = v.of === 'line' ? 'before this line' : 'before now';
  const kind = v.spell?.split(':')[0];
  // A line naming its instance has that instance's start; any other has the dyno name's newest
  // start (instanceAt.ts), whichever instance it was attributed to: the words keep the two apart.
  const named = v.instance !== undefined && v.instanceNamed === true;
  const subject = named ? `${target} instance ${shortId(v.instance!)}` : target;
  const attributed = v.instance !== undefined && !named ? ` (the line names no instance; taken as instance ${shortId(v.instance)})` : '';
  const clauses: string[] = [];
  if (v.start !== undefined) {
    const age = `${subject} ${named ? 'started' : 'last started'} ${isoSeconds(v.start)}, ${ago(v.at - v.start)} ${before}${attributed}`;
    if (kind === 'start') clauses.push(`${age}; grace after_start ${formatDuration(v.afterStartMs)}`);
    else clauses.push(v.afterStartMs > 0 ? `${age} (past after_start ${formatDuration(v.afterStartMs)})` : age);
  } else if (kind === 'release') {
    clauses.push(subject + attributed);
  } else {
    // Why a start grace could not apply: the lifecycle knows no start of this dyno at that time.
    clauses.push(`no start of ${subject} known at ${v.of === 'line' ? 'this line' : 'this time'} (no \`Starting process\`, \`State changed from starting to up\` or runtime-metrics sample of it in the lifecycle)`);
  }
  if (v.afterReleaseMs > 0) {
    if (v.release === undefined) clauses.push(`no release of the app known (after_release ${formatDuration(v.afterReleaseMs)})`);
    else {
      const rel = `last release ${isoSeconds(v.release)}, ${ago(v.at - v.release)} ${before}`;
      const within = v.at - v.release < v.afterReleaseMs;
      clauses.push(kind === 'release' ? `${rel}; grace after_release ${formatDuration(v.afterReleaseMs)}`
        : `${rel} (${within ? 'within' : 'past'} after_release ${formatDuration(v.afterReleaseMs)}${within ? ' too' : ''})`);
    }
  }
  return `${clauses.join('; ')}: ${v.inGrace ? 'counted as grace, not toward the threshold' : 'counted toward the threshold'}`;
}

/** What `mallet explain --line` says of a given line for a rule and target, before the grace. */
export type LineMatch =
  | { readonly matches: false; readonly reason: string }
  | { readonly matches: true; readonly target: string; readonly time: number; readonly instance?: string };

/** Whether `event` matches `rule` for `target`, by the engine's own matching and resolving. */
export function lineMatch(rule: CompiledRule, event: DrainEvent | undefined, target: string): LineMatch {
  if (!event) return { matches: false, reason: 'not a `heroku logs` line (TIMESTAMP source[process]: message)' };
  const found: RuleMatch[] = [];
  matchEvent([rule], event, found);
  const m = found[0];
  if (!m) return { matches: false, reason: `the line does not match rule ${rule.name}` };
  const r = resolveMatch(m);
  if (!r.ok) return { matches: false, reason: `the line matches but is rejected: ${r.reason}` };
  if (r.target !== target) return { matches: false, reason: `the line is for target ${r.target}, not ${target}` };
  const time = timestampMs(event.timestamp);
  if (!Number.isFinite(time)) return { matches: false, reason: 'the line has no RFC 3339 timestamp: the lifecycle cannot judge it' };
  const instance = instanceOf(event, target);
  return { matches: true, target, time, ...(instance !== undefined ? { instance } : {}) };
}

export { hasLifecycle };

/** `3f2a6b9e…`: enough of a uuid to tell two instances of one dyno apart in a sentence. */
function shortId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 8)}…` : id;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}
