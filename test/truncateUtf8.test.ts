import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { truncateUtf8 } from '../src/truncateUtf8.js';

/** The definition: the string's UTF-8 cut to maxBytes and decoded again (itself when it fits). */
function reference(s: string, maxBytes: number): string {
  const buf = Buffer.from(s, 'utf8');
  return buf.length <= maxBytes ? s : buf.subarray(0, maxBytes).toString('utf8');
}

describe('truncateUtf8', () => {
  // 1–4-byte characters and lone surrogates (3 bytes each as U+FFFD), around the bounds.
  const char = fc.constantFrom('a', ' ', 'é', '€', '😀', '\ud800', '\udc00', '\u00a0');
  const text = fc.array(char, { maxLength: 60 }).map((a) => a.join(''));

  it('is the cut of its UTF-8, and the very string when it fits', () => {
    fc.assert(fc.property(text, fc.integer({ min: 0, max: 200 }), (s, max) => {
      const got = truncateUtf8(s, max);
      expect(got).toBe(reference(s, max));
      if (Buffer.byteLength(s, 'utf8') <= max) expect(Object.is(got, s)).toBe(true);
    }), { numRuns: 5000 });
  });
});
