import { PREDICT_BOUNDS } from './predict.js';
import { predictInstance, predictMember, type PredictResult, type PredictStore, type PredictVote } from './predictScript.js';

/** `order`: the members in Redis sorted-set order, kept sorted as samples arrive (mostly appended). */
interface Series { members: Map<string, number>; values: Map<string, number>; answers: Map<string, PredictResult>; order: string[] }

/**
 * PREDICT_LUA's semantics in memory (a series per rule+app+target, fitted per instance), for `mallet test` and `mallet replay` (the lines' own
 * timestamps are the clock). Mirrors the script step by step, summing in the same order, so the
 * doubles agree bit for bit; test/rules/predictEquivalence.test.ts holds the two equal.
 */
export class MemoryPredictStore implements PredictStore {
  readonly #series = new Map<string, Series>();
  /** What the script keeps for `mallet explain`: the last answer per rule+app+target. */
  readonly last = new Map<string, { instance: string; time: number; answer: PredictResult }>();

  async predict(votes: readonly PredictVote[]): Promise<PredictResult[]> {
    return votes.map((v) => this.predictOne(v));
  }

  predictOne(v: PredictVote): PredictResult {
    const t = Math.trunc(v.time);
    const member = predictMember(v);
    let s = this.#series.get(v.keys.points);
    const prev = s?.answers.get(member);
    if (prev) return prev;
    if (!s) this.#series.set(v.keys.points, (s = { members: new Map(), values: new Map(), answers: new Map(), order: [] }));
    if (!s.members.has(member)) {
      s.members.set(member, t);
      s.values.set(member, v.value);
      insertSorted(s.order, s.members, member, t);
    }
    const forget = (id: string) => { s.members.delete(id); s.values.delete(id); s.answers.delete(id); };

    // The order is by time first: the newest is last, and what slides out or is capped is a prefix.
    const newest = s.members.get(s.order[s.order.length - 1]!)!;
    let drop = 0;
    while (drop < s.order.length && s.members.get(s.order[drop]!)! <= newest - v.overMs) drop++;
    if (s.order.length - drop > PREDICT_BOUNDS.maxPoints) drop = s.order.length - PREDICT_BOUNDS.maxPoints;
    if (drop > 0) {
      for (const id of s.order.slice(0, drop)) forget(id);
      s.order.splice(0, drop);
    }
    const prefix = `${predictInstance(v)}/`;
    const ordered = s.order.filter((m) => m.startsWith(prefix));

    const n = ordered.length;
    let answer: PredictResult;
    if (n < v.minSamples) {
      answer = { status: 'few', samples: n, limit: v.limit };
    } else {
      let sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (const id of ordered) {
        const x = (s.members.get(id)! - newest) / 3_600_000;
        const y = s.values.get(id)!;
        sx = sx + x;
        sy = sy + y;
        sxx = sxx + x * x;
        sxy = sxy + x * y;
      }
      const denom = n * sxx - sx * sx;
      const slope = denom > 0 ? (n * sxy - sx * sy) / denom : 0;
      const fitted = (sy - slope * sx) / n;
      if (slope < PREDICT_BOUNDS.minSlopeMbPerHour) {
        answer = { status: 'below', samples: n, slope, fitted, limit: v.limit };
      } else {
        const etaMs = Math.max(0, Math.floor((v.limit - fitted) / slope * 3_600_000 + 0.5));
        answer = { status: etaMs <= v.withinMs ? 'reaches' : 'below', samples: n, slope, etaMs, fitted, limit: v.limit };
      }
    }
    if (s.members.has(member)) s.answers.set(member, answer);
    this.last.set(v.keys.last, { instance: predictInstance(v), time: t, answer });
    return answer;
  }
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
