import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { compileGlob } from '../rules/glob.js';
import { parseDuration } from '../rules/duration.js';
import { formatDuration } from '../rules/formatDuration.js';

/**
 * A silence (after Alertmanager's): while it lasts, a firing of `app` (and `rule`, and a target
 * matching `target`) is recorded as `silenced` and runs nothing.
 */
export interface Silence {
  readonly id: string;
  readonly app: string;
  /** undefined: every rule. */
  readonly rule?: string;
  /** Glob over the target (`web.*`); undefined: every target. */
  readonly target?: string;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly comment: string;
  readonly createdBy?: string;
}

export const SILENCE_BOUNDS = Object.freeze({
  maxDurationMs: 7 * 24 * 3600_000,
  minDurationMs: 60_000,
  commentChars: 500,
  createdByChars: 64,
  /** Active silences at once: every firing matches the list (kept in memory, silenceCache.ts), so it stays short. */
  maxActive: 200,
});

const RULE_NAME = /^[a-z0-9-]{1,64}$/;
const TARGET_GLOB = /^[A-Za-z0-9:._*?-]{1,200}$/;
const CREATED_BY = /^[\x20-\x7e]*$/;

/** The fields of a new silence as a person gives them (CLI flags, API JSON). */
export interface SilenceInput {
  readonly app?: unknown;
  readonly rule?: unknown;
  readonly target?: unknown;
  /** A duration (`2h`). */
  readonly for?: unknown;
  readonly comment?: unknown;
  readonly createdBy?: unknown;
}

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** Every field checked, every problem named; undefined values of optional fields are fine. */
export function parseSilenceInput(input: SilenceInput): { ok: true; value: Omit<Silence, 'id' | 'startsAt' | 'endsAt'> & { durationMs: number } } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const str = (field: string, v: unknown, optional: boolean): string | undefined => {
    if (v === undefined || v === null || v === '') {
      if (!optional) errors.push({ field, message: 'is required' });
      return undefined;
    }
    if (typeof v !== 'string') {
      errors.push({ field, message: 'must be a string' });
      return undefined;
    }
    return v;
  };
  const app = str('app', input.app, false);
  if (app !== undefined && !HEROKU_APP_NAME.test(app)) errors.push({ field: 'app', message: `${JSON.stringify(app.slice(0, 64))} is not a Heroku app name (a-z, 0-9, -; at most 30)` });
  const rule = str('rule', input.rule, true);
  if (rule !== undefined && !RULE_NAME.test(rule)) errors.push({ field: 'rule', message: `${JSON.stringify(rule.slice(0, 64))} is not a rule name ([a-z0-9-], at most 64)` });
  const target = str('target', input.target, true);
  if (target !== undefined && (!TARGET_GLOB.test(target) || compileGlob(target.replaceAll(':', '.')).error)) {
    errors.push({ field: 'target', message: `${JSON.stringify(target.slice(0, 64))} is not a target glob ([A-Za-z0-9:._-] with * and ?, at most 200)` });
  }
  const forText = str('for', input.for, false);
  let durationMs = 0;
  if (forText !== undefined) {
    const ms = parseDuration(forText);
    if (ms === undefined) errors.push({ field: 'for', message: `${JSON.stringify(forText.slice(0, 32))} is not a duration (<integer><s|m|h|d>, e.g. 2h)` });
    else if (ms < SILENCE_BOUNDS.minDurationMs || ms > SILENCE_BOUNDS.maxDurationMs) {
      errors.push({ field: 'for', message: `must be between ${formatDuration(SILENCE_BOUNDS.minDurationMs)} and ${formatDuration(SILENCE_BOUNDS.maxDurationMs)}` });
    } else durationMs = ms;
  }
  const comment = str('comment', input.comment, false);
  if (comment !== undefined && (comment.length > SILENCE_BOUNDS.commentChars || comment.trim() === '')) {
    errors.push({ field: 'comment', message: `must say why, in at most ${SILENCE_BOUNDS.commentChars} characters` });
  }
  const createdBy = str('createdBy', input.createdBy, true);
  if (createdBy !== undefined && (createdBy.length > SILENCE_BOUNDS.createdByChars || !CREATED_BY.test(createdBy))) {
    errors.push({ field: 'createdBy', message: `at most ${SILENCE_BOUNDS.createdByChars} printable ASCII characters` });
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      app: app!, durationMs, comment: comment!,
      ...(rule !== undefined ? { rule } : {}),
      ...(target !== undefined ? { target } : {}),
      ...(createdBy !== undefined ? { createdBy } : {}),
    },
  };
}

/** Compiles the silences in force into one test for a firing. */
export function silenceMatcher(silences: readonly Silence[], now: number): (f: { app: string; rule: string; target: string }) => Silence | undefined {
  const live = silences.filter((s) => s.startsAt <= now && now < s.endsAt).map((s) => ({
    s,
    target: s.target === undefined ? undefined : targetMatcher(s.target),
  }));
  return (f) => live.find(({ s, target }) => s.app === f.app && (s.rule === undefined || s.rule === f.rule) && (target === undefined || target(f.target)))?.s;
}

/** The process glob's matcher, with `:` (a key-shaped target) allowed as an ordinary character. */
function targetMatcher(glob: string): (t: string) => boolean {
  if (!glob.includes(':')) return compileGlob(glob).matcher ?? (() => false);
  const re = new RegExp('^' + glob.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return (t) => re.test(t);
}

/**
 * An unknown app (not under `apps:` when the rules file lists apps) or rule is refused unless
 * forced, and then warned about: a typo would otherwise silence nothing, quietly.
 */
export function unknownNames(v: { app: string; rule?: string }, known: { apps?: ReadonlySet<string> | undefined; rules: ReadonlySet<string> }): FieldError[] {
  const out: FieldError[] = [];
  if (known.apps && !known.apps.has(v.app)) out.push({ field: 'app', message: `app ${v.app} is not listed under apps: in the rules file` });
  if (v.rule !== undefined && !known.rules.has(v.rule)) out.push({ field: 'rule', message: `no rule named ${v.rule} in the rules in force` });
  return out;
}
