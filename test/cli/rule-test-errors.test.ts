import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runTest } from '../../src/cli/test.js';
import type { CliIo } from '../../src/cli/CliIo.js';

const ROOT = join(import.meta.dirname, '../..');
const DIR = 'test/fixtures/rule-tests';

function io() {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const streams: CliIo = { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env: {}, cwd: ROOT };
  return { io: streams, out: () => out, err: () => err };
}

/**
 * Each bad tests file is named for its mistake: the expected `line:col` and a fragment of the
 * message, in the order printed. Positions are in the tests file unless the case names another.
 */
const BAD: Record<string, { file?: string; errors: [number, number, string][] }> = {
  'unknown-key': { errors: [[5, 9, 'test "typo in a line": missing required key "after"'], [5, 11, 'test "typo in a line": unknown key "afer"']] },
  'unknown-top-key': { errors: [[1, 1, 'missing required key "tests"'], [2, 1, 'unknown key "test"']] },
  'bad-duration': { errors: [[5, 16, 'after: expected a duration like 30s, got "30 seconds"']] },
  'bad-every': { errors: [[5, 98, 'every: expected a duration like 30s, got 20']] },
  'bad-at': { errors: [[7, 15, 'at: expected a duration like 30s, got "1.5m"']] },
  'missing-rules': { errors: [[1, 1, 'missing required key "rules"']] },
  'missing-rules-file': { errors: [[1, 8, 'cannot read rules file test/fixtures/rule-tests/no-such-rules.yml: ENOENT']] },
  'bad-line-form': { errors: [[5, 28, "line: expected 'source[process]: message'"]] },
  'line-and-message': { errors: [[5, 9, 'give one of line, process and message, or otlp']] },
  'unknown-rule': { errors: [[8, 26, 'unknown rule "web-memroy-quota" (not in config/rules.example.yml)']] },
  'unknown-action-type': { errors: [[10, 28, 'type: expected one of "redis-stop-key"']] },
  'missing-otlp-file': { errors: [[5, 28, 'test "a missing OTLP file": cannot use OTLP file no-such-export.json: ENOENT']] },
  'bad-start': { errors: [[4, 12, 'start: expected an RFC 3339 time']] },
  'bad-repeat': { errors: [[5, 88, 'repeat: expected a whole number from 1 to 10000']] },
  'missing-name': { errors: [[3, 5, 'tests[0]: missing required key "name"']] },
  'no-tests': { errors: [[2, 8, 'tests: expected at least one test']] },
  'bad-yaml': { errors: [[6, 5, 'YAML: Flow map']] },
  'duplicate-key': { errors: [[6, 5, 'YAML: Map keys must be unique']] },
  'broken-rules-file': { file: 'test/fixtures/rules/bad-duration.bad.yml', errors: [[5, 15, 'rule puma: bad duration']] },
  'many-mistakes': {
    errors: [
      [4, 12, 'start: expected an RFC 3339 time'],
      [6, 18, 'after: expected a duration like 30s, got "5 minutes"'],
      [7, 9, 'give one of line, process and message, or otlp'],
      [7, 22, 'unknown key "lien"'],
      [9, 9, 'missing required key "target"'],
    ],
  },
};

describe('mallet test: every mistake in the tests file reported at file:line:col', () => {
  it('has a fixture for every case and a case for every fixture', () => {
    const files = readdirSync(join(ROOT, DIR)).filter((f) => f.endsWith('.bad.yml')).map((f) => f.replace('.bad.yml', '')).sort();
    expect(files).toEqual(Object.keys(BAD).sort());
  });

  it.each(Object.entries(BAD))('%s', async (name, { file, errors }) => {
    const tests = `${DIR}/${name}.bad.yml`;
    const shown = file ?? tests;
    const c = io();
    expect(await runTest([tests], c.io)).toBe(1);
    expect(c.out()).toBe('');
    const lines = c.err().trimEnd().split('\n');
    expect(lines).toHaveLength(errors.length + 1);
    errors.forEach(([line, col, fragment], i) => {
      expect(lines[i]!.startsWith(`${shown}:${line}:${col}: `), lines[i]).toBe(true);
      expect(lines[i]).toContain(fragment);
    });
    expect(lines.at(-1)).toBe(`${shown}: ${errors.length} error${errors.length === 1 ? '' : 's'}`);
  });

  it('reports a tests file that cannot be read at 1:1', async () => {
    const c = io();
    expect(await runTest([`${DIR}/absent.yml`], c.io)).toBe(1);
    expect(c.err()).toContain(`${DIR}/absent.yml:1:1: cannot read tests file: ENOENT`);
  });

  it.each([[[]], [['a.yml', 'b.yml']], [['--verbose']]])('usage errors exit 2: %j', async (argv) => {
    const c = io();
    expect(await runTest(argv, c.io)).toBe(2);
    expect(c.err()).toBe('usage: mallet test TESTS.yml\n');
  });

  it('still runs a good tests file', async () => {
    const c = io();
    expect(await runTest(['config/rules.test.yml'], c.io)).toBe(0);
    expect(c.err()).toBe('');
    expect(c.out()).toMatch(/\d+ passed, 0 failed \(config\/rules\.test\.yml\)/);
  });
});
