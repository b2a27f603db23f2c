import type { CompiledRule } from './CompiledRule.js';

/** A matched, resolved line about to vote: what the bounds need to know of it. */
export interface VoteCandidate {
  readonly rule: Pick<CompiledRule, 'name' | 'count' | 'predict'>;
  readonly target: string;
  /** Engine clock of the line (ms). */
  readonly time: number;
}

export interface BoundedVotes<T> {
  /** The votes to cast, in the body's order. */
  readonly kept: T[];
  /** Lines cut by the per-body vote bound (not folded ones: those change nothing). */
  readonly droppedVotes: number;
  /** Distinct rule + target pairs left without a vote by that bound. */
  readonly droppedTargets: number;
}

/**
 * Folds and caps one body's votes. Folding: of the lines of one rule, target and time, the first
 * `count` are kept (all of a predict rule: each sample moves its line); the threshold script would answer the rest with the cooldown (or, cooldown 0,
 * the same firing again), because `count` votes at one time always complete a window or meet the
 * cooldown. Capping: if more than `maxVotes` remain, whole rule + target groups are kept, those
 * with the most matched lines first (a storm concentrates on a few dynos; fan-out spreads one
 * line each over many), ties in body order. Deterministic for a given body, so a logplex retry
 * (which may gain an L10 line in front, never a matched one) casts the same votes.
 */
export function boundVotes<T extends VoteCandidate>(candidates: readonly T[], maxVotes: number): BoundedVotes<T> {
  interface Group { readonly first: number; lines: number; votes: number; keep: boolean }
  const groups = new Map<string, Group>();
  const folded = new Map<string, number>();
  const keepLine = new Array<boolean>(candidates.length);
  const groupOf = new Array<Group>(candidates.length);
  let votes = 0;
  candidates.forEach((c, i) => {
    const id = `${c.rule.name}\u0000${c.target}`;
    let g = groups.get(id);
    if (!g) {
      g = { first: i, lines: 0, votes: 0, keep: true };
      groups.set(id, g);
    }
    g.lines++;
    groupOf[i] = g;
    // A predict rule's samples are data for its fit, not votes alone: none is folded (the cap
    // still holds), so none is counted in `folded` either (only its own rule's lines read a key).
    if (c.rule.predict === undefined) {
      const at = `${id}\u0000${c.time}`;
      const n = folded.get(at) ?? 0;
      keepLine[i] = n < c.rule.count;
      if (!keepLine[i]) return;
      folded.set(at, n + 1);
    } else {
      keepLine[i] = true;
    }
    g.votes++;
    votes++;
  });
  if (votes <= maxVotes) return { kept: candidates.filter((_c, i) => keepLine[i]), droppedVotes: 0, droppedTargets: 0 };

  const order = [...groups.values()].sort((a, b) => b.lines - a.lines || a.first - b.first);
  let budget = maxVotes;
  let droppedTargets = 0;
  for (const g of order) {
    if (g.votes <= budget) budget -= g.votes;
    else {
      g.keep = false;
      droppedTargets++;
    }
  }
  const kept: T[] = [];
  let droppedVotes = 0;
  candidates.forEach((c, i) => {
    if (!keepLine[i]) return;
    if (groupOf[i]!.keep) kept.push(c);
    else droppedVotes++;
  });
  return { kept, droppedVotes, droppedTargets };
}
