import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';

/** Every error code is documented in the README's Errors table (and nothing stale is). */
describe('error codes', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  it.each(Object.keys(ERROR_CODES))('%s is in the README', (code) => {
    expect(readme).toContain(`| \`${code}\` |`);
  });
  it('the README lists no code that does not exist', () => {
    const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1));
    const listed = [...section.matchAll(/\| `(MALLET_[A-Z_]+)` \|/g)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });
});
