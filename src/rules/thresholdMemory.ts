import { RULE_BOUNDS } from './defaults.js';
import type { ThresholdResult, ThresholdStore, ThresholdVote } from './thresholdScript.js';

interface WindowState { members: Map<string, number>; lines: Map<string, string>; since: number }

/**
 * The threshold script's semantics in memory, for dry evaluation (`mallet test`, `mallet replay`)
 * where no Redis is wanted. Mirrors THRESHOLD_LUA step by step; test/rules/thresholdEquivalence
 * runs both on the same random votes and requires equal answers. Real-time expiry is not
 * mirrored: it only collects garbage there.
 */
export class MemoryThresholdStore implements ThresholdStore {
  readonly #windows = new Map<string, WindowState>();
  readonly #firedBy = new Map<string, Map<string, string>>();
  readonly #cooldown = new Map<string, { window: string; until: number }>();

  async vote(votes: readonly ThresholdVote[]): Promise<ThresholdResult[]> {
    return votes.map((v) => this.voteOne(v));
  }

  voteOne(v: ThresholdVote): ThresholdResult {
    const t = Math.trunc(v.time);
    const fired = this.#firedBy.get(v.keys.firedBy);
    const prev = fired?.get('e:' + v.eventId);
    if (prev !== undefined) return { status: 'fired', window: prev, lines: JSON.parse(fired!.get('w:' + prev) ?? '[]') as string[] };

    if (v.grace !== undefined && v.grace !== '') return { status: 'grace', spell: v.grace };

    const cool = this.#cooldown.get(v.keys.cooldown);
    if (cool && t < cool.until) return { status: 'cooldown', window: cool.window };

    let w = this.#windows.get(v.keys.window);
    if (!w) this.#windows.set(v.keys.window, (w = { members: new Map(), lines: new Map(), since: -1 }));
    if (v.sinceMs !== undefined && Math.trunc(v.sinceMs) > w.since) {
      w.since = Math.trunc(v.sinceMs);
      for (const [m, s] of w.members) if (s < w.since) { w.members.delete(m); w.lines.delete(m); }
    }
    if (t >= w.since && !w.members.has(v.eventId)) {
      w.members.set(v.eventId, t);
      w.lines.set(v.eventId, v.line);
    }

    let newest = t;
    for (const s of w.members.values()) if (s > newest) newest = s;
    for (const [m, s] of w.members) {
      if (s <= newest - v.withinMs) { w.members.delete(m); w.lines.delete(m); }
    }

    const ordered = sortedMembers(w.members);
    const size = ordered.length;
    const max = RULE_BOUNDS.maxTriggerLines;
    if (size > max) for (const m of ordered.slice(0, size - max)) w.lines.delete(m);

    if (size >= v.count) {
      const win = String(t);
      const lines = ordered.slice(-max).map((m) => w.lines.get(m)).filter((l): l is string => l !== undefined);
      const byEvent = fired ?? new Map<string, string>();
      this.#firedBy.set(v.keys.firedBy, byEvent);
      for (const m of ordered) byEvent.set('e:' + m, win);
      byEvent.set('w:' + win, JSON.stringify(lines));
      this.#cooldown.set(v.keys.cooldown, { window: win, until: t + v.cooldownMs });
      this.#windows.delete(v.keys.window);
      return { status: 'fired', window: win, lines };
    }
    return { status: 'counting', size };
  }
}

/** Redis sorted-set order: by score, then by member bytes. */
function sortedMembers(members: Map<string, number>): string[] {
  return [...members].sort((a, b) => a[1] - b[1] || Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))).map(([m]) => m);
}
