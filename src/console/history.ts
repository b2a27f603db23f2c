import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';
import { FIRING_OUTCOMES, type FiringOutcome } from '../rules/Firing.js';
import { firingId } from '../rules/firingId.js';
import { compileGlob } from '../rules/glob.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';

/** One firing decision as the history shows it (a folded burst: `count` decisions from `at` to `last`). */
export interface FiringRecord {
  /** The stream entry id; also the cursor of the next page. */
  readonly id: string;
  readonly outcome: FiringOutcome;
  readonly rule: string;
  readonly app: string;
  /** '' for `rejected` (the target did not resolve). */
  readonly target: string;
  /** Engine time (ms) of the first decision and of the last. */
  readonly at: number;
  readonly last: number;
  readonly count: number;
  /** First trigger line. */
  readonly line?: string;
  /** The job in the action queue: the firing's own, or for `cooldown` the firing that started it. */
  readonly job?: string;
  readonly mode?: string;
  readonly reason?: string;
}

export interface HistoryFilter {
  readonly app?: string;
  readonly rule?: string;
  /** A glob over the target. */
  readonly target?: string;
  readonly outcomes?: readonly FiringOutcome[];
  readonly since?: number;
  readonly until?: number;
  /** Entry id: the page starts after (older than) it. */
  readonly cursor?: string;
  readonly limit: number;
}

export const HISTORY_PAGE = Object.freeze({ defaultLimit: 50, maxLimit: 500, batch: 500, maxScan: 20_000 });

const FOLDED = new Set<FiringOutcome>(['cooldown', 'held', 'flapping', 'duplicate', 'rejected']);
const ENTRY_ID = /^\d{1,16}-\d{1,10}$/;
const RULE = /^[a-z0-9-]{1,64}$/;

/** A query string turned into a filter, or the name of the first bad parameter and why. */
export function parseHistoryQuery(q: Record<string, unknown>): { ok: true; filter: HistoryFilter } | { ok: false; parameter: string; message: string } {
  const known = ['app', 'rule', 'target', 'outcome', 'since', 'until', 'cursor', 'limit'];
  for (const name of Object.keys(q)) if (!known.includes(name)) return { ok: false, parameter: name, message: `unknown parameter (known: ${known.join(', ')})` };
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    return typeof v === 'string' ? v : '\0';
  };
  const bad = (parameter: string, message: string) => ({ ok: false as const, parameter, message });
  const filter: { -readonly [K in keyof HistoryFilter]: HistoryFilter[K] } = { limit: HISTORY_PAGE.defaultLimit };
  const app = one('app');
  if (app !== undefined) {
    if (!HEROKU_APP_NAME.test(app)) return bad('app', 'not a Heroku app name');
    filter.app = app;
  }
  const rule = one('rule');
  if (rule !== undefined) {
    if (!RULE.test(rule)) return bad('rule', 'not a rule name ([a-z0-9-], at most 64)');
    filter.rule = rule;
  }
  const target = one('target');
  if (target !== undefined) {
    if (compileGlob(target).error) return bad('target', 'not a target glob ([A-Za-z0-9._-] with * and ?)');
    filter.target = target;
  }
  const outcome = one('outcome');
  if (outcome !== undefined) {
    const list = outcome.split(',');
    for (const o of list) if (!FIRING_OUTCOMES.includes(o as FiringOutcome)) return bad('outcome', `expected one or more (comma-separated) of ${FIRING_OUTCOMES.join(', ')}`);
    filter.outcomes = list as FiringOutcome[];
  }
  for (const name of ['since', 'until'] as const) {
    const v = one(name);
    if (v === undefined) continue;
    const t = parseTime(v);
    if (t === undefined) return bad(name, 'expected an ISO 8601 time (2024-11-14T03:14:00Z) or milliseconds since the epoch');
    filter[name] = t;
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) return bad('since', 'is after until');
  const cursor = one('cursor');
  if (cursor !== undefined) {
    if (!ENTRY_ID.test(cursor)) return bad('cursor', 'not a cursor from a previous page');
    filter.cursor = cursor;
  }
  const limit = one('limit');
  if (limit !== undefined) {
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > HISTORY_PAGE.maxLimit) return bad('limit', `expected an integer from 1 to ${HISTORY_PAGE.maxLimit}`);
    filter.limit = Number(limit);
  }
  return { ok: true, filter };
}

function parseTime(v: string): number | undefined {
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (!/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)$/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * Newest first. Scans the stream backwards in batches, filtering, until the page is full or
 * HISTORY_PAGE.maxScan entries were read; `next` is the cursor to continue from (absent at the end).
 */
export async function readHistory(redis: Redis, keys: RedisKeys, filter: HistoryFilter): Promise<{ records: FiringRecord[]; next?: string }> {
  // A key-shaped target (with `:`) is no glob: it matches itself.
  const matchTarget = filter.target === undefined ? undefined : (compileGlob(filter.target).matcher ?? ((t: string) => t === filter.target));
  const out: Array<Omit<FiringRecord, 'count' | 'last'> & { folded: boolean }> = [];
  let end = filter.cursor === undefined ? '+' : '(' + filter.cursor;
  let scanned = 0;
  let next: string | undefined;
  const sinceFloor = filter.since === undefined ? undefined : filter.since - 24 * 3600_000;
  scan: for (;;) {
    const batch = (await redis.xrevrange(keys.history(), end, '-', 'COUNT', HISTORY_PAGE.batch)) as Array<[string, string[]]>;
    for (const [id, flat] of batch) {
      scanned++;
      // Entry ids are Redis time, `at` the engine clock: a day's margin before giving up on `since`.
      if (sinceFloor !== undefined && Number(id.slice(0, id.indexOf('-'))) < sinceFloor) { next = undefined; break scan; }
      const r = parseEntry(id, flat);
      if (r && matches(r, filter, matchTarget)) {
        out.push(r);
        if (out.length === filter.limit) { next = id; break scan; }
      }
      if (scanned >= HISTORY_PAGE.maxScan) { next = id; break scan; }
    }
    if (batch.length < HISTORY_PAGE.batch) { next = undefined; break; }
    end = '(' + batch[batch.length - 1]![0];
  }
  const folded = out.filter((r) => r.folded);
  const counts = new Map<string, string | null>();
  if (folded.length > 0) {
    const p = redis.pipeline();
    for (const r of folded) p.hget(keys.threshold(r.rule, r.app, r.target).spell, 'n:' + r.id);
    const replies = (await p.exec()) ?? [];
    folded.forEach((r, i) => { counts.set(r.id, (replies[i]?.[1] as string | null) ?? null); });
  }
  const records = out.map(({ folded: _f, ...r }): FiringRecord => {
    const n = counts.get(r.id);
    if (!n) return { ...r, count: 1, last: r.at };
    const [count, last] = n.split('|');
    return { ...r, count: Number(count) || 1, last: Number(last) || r.at };
  }).filter((r) => filter.since === undefined || r.last >= filter.since);
  return next === undefined ? { records } : { records, next };
}

function matches(r: { outcome: FiringOutcome; rule: string; app: string; target: string; at: number }, f: HistoryFilter, target: ((t: string) => boolean) | undefined): boolean {
  if (f.app !== undefined && r.app !== f.app) return false;
  if (f.rule !== undefined && r.rule !== f.rule) return false;
  if (target && !target(r.target)) return false;
  if (f.outcomes && !f.outcomes.includes(r.outcome)) return false;
  if (f.until !== undefined && r.at > f.until) return false;
  // A folded record that began before `since` but went on after it belongs: its `last` is checked once joined.
  if (f.since !== undefined && r.at < f.since && !FOLDED.has(r.outcome)) return false;
  return true;
}

function parseEntry(id: string, flat: readonly string[]): (Omit<FiringRecord, 'count' | 'last'> & { folded: boolean }) | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  const outcome = f.kind as FiringOutcome;
  if (!FIRING_OUTCOMES.includes(outcome) || f.rule === undefined || f.app === undefined) return undefined;
  const target = f.target ?? '';
  const job = f.job ?? (outcome === 'cooldown' && f.window ? firingId(f.rule, f.app, target, f.window) : undefined);
  return {
    id, outcome, rule: f.rule, app: f.app, target, at: Number(f.at),
    folded: FOLDED.has(outcome),
    ...(f.line ? { line: f.line } : {}),
    ...(job ? { job } : {}),
    ...(f.mode ? { mode: f.mode } : {}),
    ...(f.reason ? { reason: f.reason } : {}),
  };
}
