import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readQuantity, readQuantityByRegExp } from '../../src/rules/fieldCondition.js';

/** The regular expression's reading, an inherited key (`constructor`) read as no unit: what every caller makes of it. */
function reference(value: string) {
  const q = readQuantityByRegExp(value);
  return q === undefined || q.dim === undefined ? undefined : q;
}

describe('readQuantity by hand', () => {
  const part = fc.constantFrom('-', '1', '0', '9', '.', 'M', 'B', 'G', 'm', 's', 'ms', 'MB', 'GB', 'pages', '%', '(', ')', 'x', ' ', 'constructor', '115.5%', '(115.5%)');
  it('reads what the regular expression reads', () => {
    fc.assert(fc.property(fc.array(part, { maxLength: 8 }).map((a) => a.join('')), (v) => {
      expect(readQuantity(v)).toEqual(reference(v));
    }), { numRuns: 20000 });
  });

  it('reads the values Heroku writes', () => {
    for (const v of ['221.47MB', '512.00MB', '591M(115.5%)', '1.5G', '30000ms', '3s', '123456pages', '90%', '42', '-3.5', '', 'MB', '1.MB', '.5MB', '5MB()', '5(%)', '5%(1.2%)', '5MB(1%)x'])
      expect(readQuantity(v)).toEqual(reference(v));
  });
});
