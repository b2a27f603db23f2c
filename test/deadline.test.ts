import { describe, expect, it } from 'vitest';
import { withDeadline } from '../src/deadline.js';

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('withDeadline', () => {
  it("answers the promise's value, and leaves no timer behind", async () => {
    const before = timeouts();
    expect(await withDeadline(Promise.resolve(42), 60_000)).toBe(42);
    expect(timeouts()).toBe(before);
  });

  it("answers 'timeout' when the promise has not settled in time", async () => {
    expect(await withDeadline(new Promise(() => {}), 20)).toBe('timeout');
  });

  it('passes a rejection through, and leaves no timer behind', async () => {
    const before = timeouts();
    await expect(withDeadline(Promise.reject(new Error('refused')), 60_000)).rejects.toThrow('refused');
    expect(timeouts()).toBe(before);
  });
});
