import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { timestampMs } from '../../src/ingest/timestampMs.js';

describe('timestampMs', () => {
  it('equals Date.parse on logplex timestamps (0–6 fraction digits, Z or an offset)', () => {
    fc.assert(fc.property(
      fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }),
      fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 999_999 }), fc.constantFrom('Z', '+00:00', '-07:00', '+05:30'),
      (d, digits, micros, zone) => {
        const frac = digits === 0 ? '' : '.' + String(micros).padStart(6, '0').slice(0, digits);
        const ts = d.toISOString().slice(0, 19) + frac + zone;
        expect(timestampMs(ts)).toBe(Date.parse(ts));
      }));
  });

  it('is NaN for what is not one', () => {
    for (const ts of ['-', '', '2024-13-01T00:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T00:00:00', '2024-01-01T00:00:00.1234567Z', '2024-01-01T00:00:00+0000']) {
      expect(timestampMs(ts)).toBeNaN();
    }
  });
});
