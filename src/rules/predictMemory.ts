import { PREDICT_BOUNDS } from './predict.js';
import { predictInstance, predictMember, type PredictResult, type PredictStore, type PredictVote } from './predictScript.js';

/** One instance's running sums, as the script packs them: x = (time - origin) / 1 h, y = MB. */
interface Sums { n: number; origin: number; sx: number; sy: number; sxx: number; sxy: number }

/**
 * `order`: the members in Redis sorted-set order, kept sorted as samples arrive (mostly appended);
 * `newest`: the newest time the series has held (the script keeps it beside the sums).
 */
interface Series {
  members: Map<string, number>;
  values: Map<string, number>;
  instances: Map<string, string>;
  answers: Map<string, PredictResult>;
  order: string[];
  sums: Map<string, Sums>;
  newest: number;
}

const HOUR = 3_600_000;

/**
 * PREDICT_LUA's semantics in memory (a series per rule+app+target, fitted per instance from
 * running sums), for `mallet test` and `mallet replay` (the lines' own timestamps are the clock).
 * Mirrors the script step by step — the same additions and subtractions on the same sums in the
 * same order, the same rebases — so the doubles agree bit for bit;
 * test/rules/predictEquivalence.test.ts holds the two equal.
 */
export class MemoryPredictStore implements PredictStore {
  readonly #series = new Map<string, Series>();

  async predict(votes: readonly PredictVote[]): Promise<PredictResult[]> {
    return votes.map((v) => this.predictOne(v));
  }

  predictOne(v: PredictVote): PredictResult {
    const t = Math.trunc(v.time);
    const member = predictMember(v);
    const inst = predictInstance(v);
    let s = this.#series.get(v.keys.points);
    const prev = s?.answers.get(member);
    if (prev) return prev;
    if (!s) this.#series.set(v.keys.points, (s = { members: new Map(), values: new Map(), instances: new Map(), answers: new Map(), order: [], sums: new Map(), newest: -Infinity }));
    s.members.set(member, t);
    s.values.set(member, v.value);
    s.instances.set(member, inst);
    insertSorted(s.order, s.members, member, t);
    if (t > s.newest) s.newest = t;
    const newest = s.newest;

    // What slides out of the window, then past the cap, is a prefix of the order.
    let drop = 0;
    while (drop < s.order.length && s.members.get(s.order[drop]!)! <= newest - v.overMs) drop++;
    if (s.order.length - drop > PREDICT_BOUNDS.maxPoints) drop = s.order.length - PREDICT_BOUNDS.maxPoints;
    let kept = true;
    for (const id of s.order.slice(0, drop)) {
      if (id === member) {
        kept = false;
      } else {
        const who = s.instances.get(id)!;
        const sums = s.sums.get(who);
        if (sums) {
          const x0 = s.members.get(id)!;
          const y0 = s.values.get(id)!;
          const x = (x0 - sums.origin) / HOUR;
          sums.n = sums.n - 1;
          sums.sx = sums.sx - x;
          sums.sy = sums.sy - y0;
          sums.sxx = sums.sxx - x * x;
          sums.sxy = sums.sxy - x * y0;
          if (sums.n <= 0) s.sums.delete(who);
        }
      }
      s.members.delete(id);
      s.values.delete(id);
      s.instances.delete(id);
      s.answers.delete(id);
    }
    if (drop > 0) s.order.splice(0, drop);

    if (kept) {
      let sums = s.sums.get(inst);
      if (sums && t - sums.origin > v.overMs) {
        // Rebase: the origin moves to this sample and the sums are summed afresh, in set order.
        sums = fresh(t);
        for (const id of s.order) if (s.instances.get(id) === inst) add(sums, s.members.get(id)!, s.values.get(id)!);
      } else {
        sums ??= fresh(t);
        add(sums, t, v.value);
      }
      s.sums.set(inst, sums);
    }

    const sums = s.sums.get(inst);
    const n = sums ? sums.n : 0;
    let answer: PredictResult;
    if (!sums || n < v.minSamples) {
      answer = { status: 'few', samples: n, limit: v.limit };
    } else {
      const { sx, sy, sxx, sxy } = sums;
      const spread = n * sxx - sx * sx;
      const slope = spread > PREDICT_BOUNDS.spreadFloor * n * sxx ? (n * sxy - sx * sy) / spread : 0;
      const fitted = (sy - slope * sx) / n + slope * ((newest - sums.origin) / HOUR);
      if (slope < PREDICT_BOUNDS.minSlopeMbPerHour) {
        answer = { status: 'below', samples: n, slope, fitted, limit: v.limit };
      } else {
        const etaMs = Math.max(0, Math.floor((v.limit - fitted) / slope * HOUR + 0.5));
        answer = { status: etaMs <= v.withinMs ? 'reaches' : 'below', samples: n, slope, etaMs, fitted, limit: v.limit };
      }
    }
    if (kept) s.answers.set(member, answer);
    return answer;
  }
}

function fresh(origin: number): Sums {
  return { n: 0, origin, sx: 0, sy: 0, sxx: 0, sxy: 0 };
}

/** One sample into the sums, in the script's order of operations. */
function add(s: Sums, time: number, y: number): void {
  const x = (time - s.origin) / HOUR;
  s.n = s.n + 1;
  s.sx = s.sx + x;
  s.sy = s.sy + y;
  s.sxx = s.sxx + x * x;
  s.sxy = s.sxy + x * y;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Redis sorted-set order: by score, then by member bytes (UTF-8 order is code point order, which
 * UTF-16 comparison matches unless a surrogate is involved). */
function before(ta: number, a: string, tb: number, b: string): boolean {
  if (ta !== tb) return ta < tb;
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0;
  return a < b;
}

/** Inserts `id` (time `t`) into `order`: a binary search, from the end in the common case. */
function insertSorted(order: string[], members: Map<string, number>, id: string, t: number): void {
  const n = order.length;
  if (n === 0 || before(members.get(order[n - 1]!)!, order[n - 1]!, t, id)) {
    order.push(id);
    return;
  }
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(members.get(order[mid]!)!, order[mid]!, t, id)) lo = mid + 1;
    else hi = mid;
  }
  order.splice(lo, 0, id);
}
