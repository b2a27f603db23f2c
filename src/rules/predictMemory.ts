import { PREDICT_BOUNDS } from './predict.js';
import type { PredictResult, PredictStore, PredictVote } from './predictScript.js';

interface Series { members: Map<string, number>; values: Map<string, number>; answers: Map<string, PredictResult> }

/**
 * PREDICT_LUA's semantics in memory, for `mallet test` and `mallet replay` (the lines' own
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
    let s = this.#series.get(v.keys.points);
    const prev = s?.answers.get(v.eventId);
    if (prev) return prev;
    if (!s) this.#series.set(v.keys.points, (s = { members: new Map(), values: new Map(), answers: new Map() }));
    if (!s.members.has(v.eventId)) {
      s.members.set(v.eventId, t);
      s.values.set(v.eventId, v.value);
    }
    const forget = (id: string) => { s.members.delete(id); s.values.delete(id); s.answers.delete(id); };

    let newest = t;
    for (const m of s.members.values()) if (m > newest) newest = m;
    for (const [id, m] of s.members) if (m <= newest - v.overMs) forget(id);
    let ordered = sortedMembers(s.members);
    if (ordered.length > PREDICT_BOUNDS.maxPoints) {
      for (const id of ordered.slice(0, ordered.length - PREDICT_BOUNDS.maxPoints)) forget(id);
      ordered = ordered.slice(-PREDICT_BOUNDS.maxPoints);
    }

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
    if (s.members.has(v.eventId)) s.answers.set(v.eventId, answer);
    this.last.set(v.keys.last, { instance: v.instance, time: t, answer });
    return answer;
  }
}

/** Redis sorted-set order: by score, then by member bytes. */
function sortedMembers(members: Map<string, number>): string[] {
  return [...members].sort((a, b) => a[1] - b[1] || Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))).map(([m]) => m);
}
