import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { instanceOf } from '../../src/rules/instance.js';
import { event } from './events.js';

const UUID = 'd3a5a2f0-5c4c-4b9c-8e0c-1d7e0c5d2b3a';
const DYNO_FIELD = / dyno=heroku\.\d{1,20}\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?: |$)/;
/** The definition, with the prefix made as a string. */
function reference(source: string, process: string, text: string, target: string): string | undefined {
  if (source !== 'heroku' || process !== target) return undefined;
  if (!text.startsWith(`source=${target} `)) return undefined;
  return DYNO_FIELD.exec(text)?.[1];
}

describe('instanceOf', () => {
  it('is the definition, the prefix compared in place', () => {
    const part = fc.constantFrom('source=', 'web.1', 'web.12', ' ', 'dyno=heroku.123.', UUID, 'sample#memory_total=1MB', '', 'x');
    fc.assert(fc.property(fc.array(part, { maxLength: 8 }).map((a) => a.join('')), fc.constantFrom('web.1', 'web.12', '', 'x'), fc.constantFrom('heroku', 'app'), (text, target, source) => {
      for (const process of [target, 'web.1']) expect(instanceOf(event(source, process, text), target)).toBe(reference(source, process, text, target));
    }), { numRuns: 5000 });
    expect(instanceOf(event('heroku', 'web.1', `source=web.1 dyno=heroku.123.${UUID} sample#memory_total=1MB`), 'web.1')).toBe(UUID);
  });
});
