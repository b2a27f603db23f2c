import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LogfmtFields, parseLogfmt } from '../../src/ingest/logfmt.js';
import { readQuantity, readQuantityByRegExp } from '../../src/rules/fieldCondition.js';
import { truncateUtf8 } from '../../src/truncateUtf8.js';
import { instanceOf } from '../../src/rules/instance.js';

/** Wider alphabets than the owners' property tests: NUL, controls, surrogates, prefix keys. */
describe('logfmt, quantities, truncation, instances: wide alphabets', () => {
  const parts = [' ', '\t', '\0', '\x01', '\x7f', '\u2028', '=', '"', '\\', '\\"', 'a', 'ab', 'abc', 'b', 'a#b', 'sample#memory_total', 'sample#memory_total_x', 'é', '😀', '\ud83d', '\ude00', '1MB', 'x=y=z'];
  const text = fc.array(fc.constantFrom(...parts), { maxLength: 30 }).map((a) => a.join(''));
  const key = fc.constantFrom('a', 'ab', 'abc', 'b', 'a#b', 'sample#memory_total', 'sample#memory_total_x', 'é', '😀', '\ud83d', '\ude00', '\0', 'a\0', 'x', 'x=y', '=', '"', '');
  it('LogfmtFields.get/has = parseLogfmt for NUL, controls, surrogates, prefix keys', () => {
    fc.assert(fc.property(text, fc.array(key, { maxLength: 8 }), (t, ks) => {
      const all = parseLogfmt(t);
      const lazy = new LogfmtFields(t);
      for (const k of [...ks, ...all.keys(), ...ks]) {
        expect(lazy.get(k)).toBe(all.get(k));
        expect(lazy.has(k)).toBe(all.has(k));
      }
    }), { numRuns: 5000 });
  });

  it('readQuantity = the regular expression on unicode digits, signs, exponents', () => {
    const p = fc.constantFrom('-', '+', '1', '0', '.', 'e', 'E', '5', '١', '𝟏', 'MB', 'M', 'GB', 'ms', '%', '(', ')', '(1%)', '__proto__', 'toString', 'hasOwnProperty', ' ', '\n', 'Infinity');
    fc.assert(fc.property(fc.array(p, { maxLength: 7 }).map((a) => a.join('')), (v) => {
      const r = readQuantityByRegExp(v);
      const ref = r === undefined || r.dim === undefined ? undefined : r;
      expect(readQuantity(v)).toEqual(ref);
    }), { numRuns: 20000 });
  });

  it('truncateUtf8 = its definition (lone surrogates, 4-byte sequences at the cut)', () => {
    const p = fc.constantFrom('a', 'é', '€', '😀', '\ud83d', '\ude00', '\0');
    fc.assert(fc.property(fc.array(p, { maxLength: 40 }).map((a) => a.join('')), fc.integer({ min: 0, max: 60 }), (s, max) => {
      const b = Buffer.from(s, 'utf8');
      expect(truncateUtf8(s, max)).toBe(b.length <= max ? s : b.subarray(0, max).toString('utf8'));
    }), { numRuns: 20000 });
  });

  it('instanceOf: a target that is the whole text, or longer', () => {
    const ev = (message: string, process: string) => ({ source: 'heroku', process, message }) as never;
    const u = '01234567-89ab-cdef-0123-456789abcdef';
    expect(instanceOf(ev('source=web.1', 'web.1'), 'web.1')).toBeUndefined();
    expect(instanceOf(ev('source=web.1 dyno=heroku.1.' + u, 'web.1'), 'web.1')).toBe(u);
    expect(instanceOf(ev('source=web.10 dyno=heroku.1.' + u, 'web.1'), 'web.1')).toBeUndefined();
    expect(instanceOf(ev('source=web.1\tdyno=heroku.1.' + u, 'web.1'), 'web.1')).toBeUndefined();
  });
});
