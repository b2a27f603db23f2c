import { describe, expect, it } from 'vitest';
import { DeadlineSweep } from '../src/deadlineSweep.js';

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const later = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

describe('DeadlineSweep', () => {
  it("answers each promise's value, and leaves no timer behind once all have settled", async () => {
    const sweep = new DeadlineSweep();
    const before = timeouts();
    const waits = [sweep.wait(Promise.resolve(1), 60_000), sweep.wait(later(5, 2), 60_000), sweep.wait(later(1, 3), 59_000)];
    expect(await Promise.all(waits)).toEqual([1, 2, 3]);
    expect(sweep.size).toBe(0);
    expect(timeouts()).toBe(before);
  });

  it("answers 'timeout' for each wait past its deadline, in any order of deadlines, and the others their values", async () => {
    const sweep = new DeadlineSweep();
    const never = new Promise<number>(() => {});
    const t0 = performance.now();
    const ends: Record<string, number> = {};
    const track = <T>(name: string, p: Promise<T>) => p.then((v) => { ends[name] = performance.now() - t0; return v; });
    const results = await Promise.all([
      track('a', sweep.wait(never, 60)),
      track('b', sweep.wait(never, 20)),
      track('c', sweep.wait(later(10, 'c'), 40)),
      track('d', sweep.wait(never, 0)),
      track('e', sweep.wait(never, 40)),
      track('f', sweep.wait(later(80, 'f'), 40)),
      track('g', sweep.wait(never, Number.NaN)),
    ]);
    expect(results).toEqual(['timeout', 'timeout', 'c', 'timeout', 'timeout', 'timeout', 'timeout']);
    // None answered before its deadline (a timer may fire a millisecond early), none long after.
    for (const [name, ms] of [['a', 60], ['b', 20], ['e', 40], ['f', 40]] as const) {
      expect(ends[name]).toBeGreaterThanOrEqual(ms - 1);
      expect(ends[name]).toBeLessThan(ms + 500);
    }
    expect(sweep.size).toBe(0);
  });

  it('passes a rejection through, and a wait added after the others expired is timed again', async () => {
    const sweep = new DeadlineSweep();
    const before = timeouts();
    await expect(sweep.wait(Promise.reject(new Error('refused')), 60_000)).rejects.toThrow('refused');
    expect(timeouts()).toBe(before);
    expect(await sweep.wait(new Promise(() => {}), 5)).toBe('timeout');
    expect(await sweep.wait(new Promise(() => {}), 5)).toBe('timeout');
    expect(await sweep.wait(later(1, 'x'), 50)).toBe('x');
    expect(timeouts()).toBe(before);
  });

  it('keeps many waits in deadline order however they arrive (a settled one anywhere in the list)', async () => {
    let now = 0;
    const sweep = new DeadlineSweep(() => now);
    const order: number[] = [];
    const settle: Array<() => void> = [];
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const ms = 1000 + ((i * 37) % 11);
      let done!: () => void;
      const p = new Promise<void>((r) => { done = r; });
      settle.push(done);
      waits.push(sweep.wait(p, ms).then((v) => { if (v === 'timeout') order.push(ms); }));
    }
    for (let i = 0; i < 200; i += 3) settle[i]!();
    await new Promise((r) => setImmediate(r));
    expect(sweep.size).toBe(200 - 67);
    now = 2000;
    await Promise.all(waits);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(order.length).toBe(133);
    expect(sweep.size).toBe(0);
  });
});
