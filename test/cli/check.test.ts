import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/CliIo.js';
import { closest, editDistance } from '../../src/rules/suggest.js';
import { loadRulesText } from '../../src/rules/load.js';

const ROOT = join(import.meta.dirname, '../..');

function io(env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const streams: CliIo = { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env, cwd: ROOT };
  return { io: streams, out: () => out, err: () => err };
}

const TEN = 'test/fixtures/check/ten-mistakes.yml';

describe('mallet check: every mistake of a file in one run', () => {
  it('reports structure, units, templates, regexes, secrets and names together, a missing version among them', async () => {
    const c = io();
    expect(await runCheck([TEN], c.io)).toBe(1);
    const lines = c.err().trim().split('\n');
    const at = (l: string) => l.slice(TEN.length + 1).split(': ')[0];
    // [line:col, fragment]: fourteen mistakes of eleven kinds, each at its own key or value.
    const expected: [string, string][] = [
      ['1:1', 'missing required key "version"'],
      ['2:3', 'app name must be a Heroku app name'],
      ['6:7', 'rule puma: unknown key "proces" (did you mean "process"?)'],
      ['7:16', 'rule puma: regex does not compile under RE2'],
      ['8:36', 'rule puma: bad duration'],
      ['11:14', 'rule puma: unknown template variable {{dynoo}}'],
      ['16:26', 'rule slow: bad unit "xs"'],
      ['20:15', 'rule slow: unknown action type "sidekiq-stp" (did you mean "sidekiq-stop"?)'],
      ['22:9', 'rule slow: unknown key "quiet_timout" (did you mean "quiet_timeout"?)'],
      ['24:14', 'rule slow: notify url must be an environment reference'],
      ['25:11', 'rule puma: duplicate rule name'],
      ['26:57', 'rule puma: bad process glob "web/1"'],
      ['29:14', 'environment variable MALLET_TEST_UNSET_HOOK is not set'],
      ['30:15', 'rule puma: {{captures.knd}}: the message regex has no named group'],
    ];
    expect(lines.slice(0, -1).map(at)).toEqual(expected.map(([p]) => p));
    for (const [i, [, fragment]] of expected.entries()) expect(lines[i]).toContain(fragment);
    expect(lines.at(-1)).toBe(`${TEN}: 14 errors`);
  });

  it('--allow-unset-env drops only the unset-variable errors: a literal secret is still refused', async () => {
    const c = io();
    expect(await runCheck(['--allow-unset-env', TEN], c.io)).toBe(1);
    expect(c.err()).not.toContain('MALLET_TEST_UNSET_HOOK');
    expect(c.err()).toContain('notify url must be an environment reference');
    expect(c.err().trim().split('\n').at(-1)).toBe(`${TEN}: 13 errors`);
  });

  it('passes in CI without secrets with --allow-unset-env, and not without it', async () => {
    const strict = io();
    expect(await runCheck(['test/fixtures/check/warnings.yml'], strict.io)).toBe(1);
    expect(strict.err()).toContain('environment variable SLACK_WEBHOOK_URL is not set');
    const ci = io();
    expect(await runCheck(['--allow-unset-env', 'test/fixtures/check/warnings.yml'], ci.io)).toBe(0);
    expect(ci.out()).toBe('test/fixtures/check/warnings.yml: ok (6 rules, 6 warnings)\n');
  });
});

describe('mallet check: warnings (printed, exit 0)', () => {
  it('warns about actions that do not fit their process, fields the match never provides, and a restart with no token', async () => {
    const c = io();
    expect(await runCheck(['--allow-unset-env', 'test/fixtures/check/warnings.yml'], c.io)).toBe(0);
    const lines = c.err().trim().split('\n');
    expect(lines.every((l) => l.includes(': warning: '))).toBe(true);
    const pos = lines.map((l) => l.split(': ')[0]!.split(':').slice(1).join(':'));
    expect(pos).toEqual(['6:15', '10:15', '13:13', '17:15', '17:15', '21:15']);
    expect(lines[0]).toContain('rule worker-stop-key: redis-stop-key on worker.* dynos');
    expect(lines[1]).toContain('rule web-sidekiq: sidekiq-stop on web.* dynos');
    expect(lines[2]).toContain('rule dyno-from-nowhere: {{fields.dyno}}: the lines this rule matches are not sure to carry dyno=');
    expect(lines[4]).toContain('{{fields.code}}');
    expect(lines[5]).toContain('rule restart-without-token: heroku-restart has no token');
    // Router rules provide dyno=, a field condition provides its key (and a ratio's other field),
    // `key=` in the message literal provides key, an action token silences the token warning.
    expect(c.err()).not.toMatch(/rule fine(-metrics)?:/);
  });

  it('no token warning when HEROKU_API_TOKEN is set or every listed app has its own token', () => {
    const rules = (apps: string) => `version: 1\n${apps}rules:\n  - name: r\n    match: { process: "web.*", message: '^Error R15 ' }\n    actions: [ { type: heroku-restart } ]\n`;
    const warns = (text: string, env: Record<string, string> = {}) => loadRulesText(text, 'r.yml', env).warnings.map((w) => w.message);
    expect(warns(rules(''))).toEqual([expect.stringContaining('heroku-restart has no token')]);
    expect(warns(rules(''), { HEROKU_API_TOKEN: 'x' })).toEqual([]);
    expect(warns(rules('apps:\n  my-app: { heroku_api_token: "${T}" }\n'), { T: 'x' })).toEqual([]);
    expect(warns(rules('apps:\n  my-app: { heroku_api_token: "${T}" }\n  other-app: {}\n'), { T: 'x' })).toEqual([expect.stringContaining('apps other-app have no heroku_api_token')]);
  });

  it('the example rules load without errors and their warnings are the expected ones', async () => {
    const c = io();
    expect(await runCheck([], c.io)).toBe(0);
    const lines = c.err().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^config\/rules\.example\.yml:\d+:\d+: warning: rule web-memory-escalate: heroku-restart has no token/);
    expect(lines[1]).toMatch(/^config\/rules\.example\.yml:\d+:\d+: warning: rule h12-storm: heroku-restart has no token/);
    const t = io({ HEROKU_API_TOKEN: 'x' });
    expect(await runCheck([], t.io)).toBe(0);
    expect(t.err()).toBe('');
  });
});

describe('did you mean', () => {
  it('suggests the nearest key or type, and nothing for a word far from all', () => {
    expect(closest('proces', ['source', 'process', 'message', 'fields'])).toBe('process');
    expect(closest('quiet_timout', ['type', 'hostname', 'quiet_timeout', 'stop_timeout'])).toBe('quiet_timeout');
    expect(closest('treshold', ['name', 'match', 'threshold', 'target'])).toBe('threshold');
    expect(closest('redis-stop', ['redis-stop-key', 'sidekiq-stop', 'heroku-restart', 'notify'])).toBe('redis-stop-key');
    expect(closest('ntoify', ['redis-stop-key', 'sidekiq-stop', 'heroku-restart', 'notify'])).toBe('notify');
    expect(closest('reboot-everything', ['redis-stop-key', 'sidekiq-stop', 'heroku-restart', 'notify'])).toBeUndefined();
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('names the keys of the action type at hand, and of top-level sections', () => {
    const errs = (text: string) => {
      const r = loadRulesText(text, 'r.yml', {});
      return r.ok ? [] : r.errors.map((e) => e.message);
    };
    expect(errs('version: 1\nrules:\n  - name: r\n    match: {}\n    actions: [ { type: redis-stop-key, tll: 60s } ]\n'))
      .toEqual(['rule r: unknown key "tll" (did you mean "ttl"?)']);
    expect(errs('version: 1\nrule: []\n')).toEqual(['missing required key "rules"', 'unknown key "rule" (did you mean "rules"?)']);
    expect(errs('version: 1\nrules: []\nlimits: { flaping: { max_firings: 3 } }\n')).toEqual(['unknown key "flaping" (did you mean "flapping"?)']);
  });
});

describe('exit codes: 0 valid, 1 invalid, 2 usage', () => {
  it.each([
    [['check', '--bogus'], 2],
    [['check', 'a.yml', 'b.yml'], 2],
    [[], 2],
    [['frobnicate'], 2],
    [['replay'], 2],
    [['check', 'test/fixtures/rules/good-minimal.yml'], 0],
    [['check', TEN], 1],
    [['check', 'no/such/file.yml'], 1],
    [['--help'], 0],
  ])('mallet %j exits %i', async (argv, code) => {
    const c = io();
    expect(await main(argv, c.io)).toBe(code);
  });
});
