import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';
import { FIRING_OUTCOMES, type FiringOutcome } from '../rules/Firing.js';
import { firingId } from '../rules/firingId.js';
import { compileGlob } from '../rules/glob.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';

/** One firing decision as the history shows it (a folded burst: `count` decisions from `at` to `last`). */
export interface FiringRecord {
  /** The stream entry id (in its app's stream). */
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
  /** A predictive firing's forecast ("web.1 reaches 512 MB in ~12 min at 41 MB/h"). */
  readonly prediction?: string;
}

export interface HistoryFilter {
  readonly app?: string;
  readonly rule?: string;
  /** A glob over the target. */
  readonly target?: string;
  readonly outcomes?: readonly FiringOutcome[];
  readonly since?: number;
  readonly until?: number;
  /** `<entry id>_<app>` of the last record of the previous page: this page starts after it. */
  readonly cursor?: string;
  readonly limit: number;
}

export const HISTORY_PAGE = Object.freeze({ defaultLimit: 50, maxLimit: 500, batch: 500, maxScan: 20_000 });

const FOLDED = new Set<FiringOutcome>(['cooldown', 'grace', 'held', 'flapping', 'duplicate', 'rejected']);
const CURSOR = /^\d{1,16}-\d{1,10}_[a-z][a-z0-9-]{1,29}$/;
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
    if (!CURSOR.test(cursor)) return bad('cursor', 'not a cursor from a previous page');
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

/** The apps whose history the console reads (at most this many; the rest are named by `app=`). */
export const MAX_HISTORY_APPS = 500;

/** The apps that have a history: those the service registered, and those the rules file lists. */
export async function historyApps(redis: Redis, keys: RedisKeys, listed?: Iterable<string>): Promise<string[]> {
  const apps = new Set(await redis.srandmember(keys.historyApps(), MAX_HISTORY_APPS));
  for (const a of listed ?? []) apps.add(a);
  return [...apps].filter((a) => HEROKU_APP_NAME.test(a)).sort().slice(0, MAX_HISTORY_APPS);
}

/** One app's stream read backwards in batches. */
class StreamCursor {
  #buffer: Array<[string, string[]]> = [];
  #done = false;
  constructor(private readonly redis: Redis, private readonly key: string, readonly app: string, private end: string) {}

  async head(): Promise<[string, string[]] | undefined> {
    if (this.#buffer.length === 0 && !this.#done) {
      const batch = (await this.redis.xrevrange(this.key, this.end, '-', 'COUNT', HISTORY_PAGE.batch)) as Array<[string, string[]]>;
      this.#buffer = batch;
      if (batch.length < HISTORY_PAGE.batch) this.#done = true;
      if (batch.length > 0) this.end = '(' + batch[batch.length - 1]![0];
    }
    return this.#buffer[0];
  }

  shift(): void { this.#buffer.shift(); }
}

/** Stream entry ids compared as (ms, seq). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/**
 * Newest first, across the apps' streams (one per app, each in its app's hash slot), merged by
 * entry id then app. Reads backwards in batches, filtering, until the page is full or
 * HISTORY_PAGE.maxScan entries were read; `next` is the cursor to continue from (absent at the end).
 */
export async function readHistory(redis: Redis, keys: RedisKeys, filter: HistoryFilter, apps?: readonly string[]): Promise<{ records: FiringRecord[]; next?: string }> {
  // A key-shaped target (with `:`) is no glob: it matches itself.
  const matchTarget = filter.target === undefined ? undefined : (compileGlob(filter.target).matcher ?? ((t: string) => t === filter.target));
  const names = filter.app !== undefined ? [filter.app] : (apps ?? await historyApps(redis, keys));
  const [cursorId, cursorApp = ''] = filter.cursor?.split('_') ?? [];
  // After the cursor in (id, app) descending order: an older id, or the same id in a smaller app.
  const streams = names.map((app) => new StreamCursor(redis, keys.history(app), app, cursorId === undefined ? '+' : (app < cursorApp ? cursorId : '(' + cursorId)));
  const out: Array<Omit<FiringRecord, 'count' | 'last'> & { folded: boolean }> = [];
  let scanned = 0;
  let next: string | undefined;
  const sinceFloor = filter.since === undefined ? undefined : filter.since - 24 * 3600_000;
  for (;;) {
    let best: { s: StreamCursor; entry: [string, string[]] } | undefined;
    for (const s of streams) {
      const entry = await s.head();
      if (!entry) continue;
      if (!best || compareIds(entry[0], best.entry[0]) > 0 || (compareIds(entry[0], best.entry[0]) === 0 && s.app > best.s.app)) best = { s, entry };
    }
    if (!best) { next = undefined; break; }
    best.s.shift();
    const [id, flat] = best.entry;
    scanned++;
    // Entry ids are Redis time, `at` the engine clock: a day's margin before giving up on `since`.
    if (sinceFloor !== undefined && Number(id.slice(0, id.indexOf('-'))) < sinceFloor) { next = undefined; break; }
    const r = parseEntry(id, flat, best.s.app);
    if (r && matches(r, filter, matchTarget)) {
      out.push(r);
      if (out.length === filter.limit) { next = `${id}_${best.s.app}`; break; }
    }
    if (scanned >= HISTORY_PAGE.maxScan) { next = `${id}_${best.s.app}`; break; }
  }
  // The counts of folded records, one pipeline per app (an app's keys share its slot).
  const counts = new Map<string, string | null>();
  const byApp = new Map<string, typeof out>();
  for (const r of out) if (r.folded) byApp.set(r.app, [...(byApp.get(r.app) ?? []), r]);
  await Promise.all([...byApp].map(async ([, list]) => {
    const p = redis.pipeline();
    for (const r of list) p.hget(keys.threshold(r.rule, r.app, r.target).spell, 'n:' + r.id);
    const replies = (await p.exec()) ?? [];
    list.forEach((r, i) => { counts.set(`${r.app} ${r.id}`, (replies[i]?.[1] as string | null) ?? null); });
  }));
  const records = out.map(({ folded: _f, ...r }): FiringRecord => {
    const n = counts.get(`${r.app} ${r.id}`);
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

function parseEntry(id: string, flat: readonly string[], app: string): (Omit<FiringRecord, 'count' | 'last'> & { folded: boolean }) | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  const outcome = f.kind as FiringOutcome;
  if (!FIRING_OUTCOMES.includes(outcome) || f.rule === undefined || f.app !== app) return undefined;
  const target = f.target ?? '';
  const job = f.job ?? (outcome === 'cooldown' && f.window ? firingId(f.rule, f.app, target, f.window) : undefined);
  return {
    id, outcome, rule: f.rule, app: f.app, target, at: Number(f.at),
    folded: FOLDED.has(outcome),
    ...(f.line ? { line: f.line } : {}),
    ...(job ? { job } : {}),
    ...(f.mode ? { mode: f.mode } : {}),
    ...(f.reason ? { reason: f.reason } : {}),
    ...(f.prediction ? { prediction: f.prediction } : {}),
  };
}
