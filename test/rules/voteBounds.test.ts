import { describe, expect, it } from 'vitest';
import { boundVotes } from '../../src/rules/voteBounds.js';

const vote = (rule: string, count: number, target: string, time = 1000) => ({ rule: { name: rule, count }, target, time });

describe('boundVotes', () => {
  it('folds the lines of one rule, target and time to the rule count, and keeps lines at other times', () => {
    const votes = [
      ...Array.from({ length: 50 }, () => vote('r14', 2, 'web.1')),
      vote('r14', 2, 'web.1', 2000),
      vote('other', 1, 'web.1'), vote('other', 1, 'web.1'),
    ];
    const r = boundVotes(votes, 1000);
    expect(r.kept.map((v) => `${v.rule.name}/${v.target}@${v.time}`)).toEqual(['r14/web.1@1000', 'r14/web.1@1000', 'r14/web.1@2000', 'other/web.1@1000']);
    expect(r.droppedVotes).toBe(0);
  });

  it('over the cap keeps whole targets, most lines first, in body order', () => {
    const fanOut = Array.from({ length: 20 }, (_x, i) => vote('r14', 1, `web.${100 + i}`));
    const storm = Array.from({ length: 9 }, (_x, i) => vote('r14', 3, `web.${i % 3}`, 1000 + i));
    const r = boundVotes([...fanOut, ...storm], 15);
    // The storm's 9 votes over 3 dynos first, then the first 6 fan-out targets.
    expect(r.kept.map((v) => v.target)).toEqual([...fanOut.slice(0, 6).map((v) => v.target), ...storm.map((v) => v.target)]);
    expect(r).toMatchObject({ droppedVotes: 14, droppedTargets: 14 });
  });
});
