import { describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/keys.js';

/**
 * The threshold, predict, history and stats keys are remembered per input (src/keys.ts Memo):
 * a remembered set must be the one a fresh builder makes for the same input, never another
 * input's, also once the memo has been emptied at its bound by a flood of log-made targets.
 */
describe('remembered keys', () => {
  it('are the keys a fresh builder makes, for every input, across the memo being emptied', () => {
    const memo = redisKeys('mk');
    const inputs: Array<[string, string, string]> = [];
    // 3 rules × 2 apps × 1 500 targets: past the bound (4 096) twice; unsafe parts hashed.
    for (let t = 0; t < 1500; t++) for (const rule of ['r14', 'h12 storm', 'r:x']) for (const app of ['shop', 'sh{op}']) inputs.push([rule, app, t % 7 === 0 ? `run.${t}-x y` : `web.${t}`]);
    for (let round = 0; round < 2; round++) {
      for (const [rule, app, target] of inputs) {
        const fresh = redisKeys('mk');
        expect(memo.threshold(rule, app, target)).toEqual(fresh.threshold(rule, app, target));
        expect(memo.predict(rule, app, target)).toEqual(fresh.predict(rule, app, target));
        expect(memo.history(app)).toBe(fresh.history(app));
        expect(memo.stats(app, 2_900_000 + (target.length % 3))).toBe(fresh.stats(app, 2_900_000 + (target.length % 3)));
      }
    }
    // The same input asked again gets the same object: nothing rebuilt.
    expect(memo.threshold('r14', 'shop', 'web.1')).toBe(memo.threshold('r14', 'shop', 'web.1'));
    expect(Object.isFrozen(memo.threshold('r14', 'shop', 'web.1'))).toBe(true);
  });

  it('a Fir dyno name keeps its process type cooldown key, remembered or not', () => {
    const k = redisKeys('mk2');
    const a = k.threshold('r14', 'shop', 'web-58b4fbb5b9-abcde');
    const b = k.threshold('r14', 'shop', 'web-58b4fbb5b9-fghij');
    expect(a.cooldown).toBe(b.cooldown);
    expect(a.window).not.toBe(b.window);
    expect(redisKeys('mk2').threshold('r14', 'shop', 'web-58b4fbb5b9-fghij')).toEqual(b);
  });
});
