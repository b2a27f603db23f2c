import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatRuleError, loadRules, loadRulesText } from '../../src/rules/load.js';
import { DEFAULT_LIMITS } from '../../src/rules/RuleSet.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/rules');

/** Each bad fixture is named for its mistake; the expected `line:col: message` fragments. */
const BAD: Record<string, [number, number, string][]> = {
  'duplicate-name': [[6, 11, 'rule puma: duplicate rule name']],
  'long-app-name': [[3, 3, 'app name must be a Heroku app name']],
  'bad-name': [[3, 11, 'rule name must match [a-z0-9-]+']],
  'unknown-key': [[5, 5, 'rule puma: unknown key "treshold"']],
  'bad-duration': [[5, 15, 'bad duration']],
  'bad-unit': [[6, 26, 'rule slow: bad unit "xs"']],
  'backreference-regex': [[4, 23, 'rule backref: regex does not compile under RE2']],
  'lookahead-regex': [[4, 23, 'regex does not compile under RE2']],
  'unset-env': [[7, 14, 'environment variable MALLET_TEST_UNSET_HOOK is not set']],
  'bad-glob': [[4, 23, 'bad process glob "web.[12]"']],
  'unknown-action': [[5, 24, 'unknown action type "reboot-everything"']],
  'missing-match': [[3, 5, 'missing required key "match"']],
  'unknown-template-var': [[5, 45, 'unknown template variable {{dyno}}']],
  'unknown-capture': [[5, 45, 'no named group (?<dyno>']],
  'bad-yaml': [[5, 5, 'YAML:']],
  'duplicate-key': [[6, 5, 'YAML: Map keys must be unique']],
  'bad-version': [[1, 10, 'version']],
  'many-mistakes': [[4, 23, 'rule first: regex'], [7, 39, 'rule second: bad process glob'], [8, 15, 'rule second: bad duration']],
  'literal-notify-url': [[7, 14, 'rule tell: notify url must be an environment reference like ${SLACK_WEBHOOK_URL}: webhook URLs are secrets and job data is shown on the dashboard']],
  'redis-url-with-password': [
    [4, 16, 'redis_url with a password must be an environment reference like ${MY_APP_REDIS_URL}'],
    [9, 44, 'rule stop: redis_url with a password must be an environment reference'],
  ],
  'literal-telemetry-token': [[4, 22, 'telemetry_token must be an environment reference like ${MY_APP_TELEMETRY_TOKEN}']],
  'bad-fir-glob': [[4, 41, 'bad metric-name glob "memory[usage]"']],
  'bad-fir-attribute': [[3, 21, 'attribute name: expected [A-Za-z0-9._-]{1,100}'], [4, 3, 'unknown key "colour"']],
  'bad-grace': [[5, 27, 'rule boot: after_start must be between 1s and 1h'], [5, 31, 'rule boot: unknown key "after_relase"'], [9, 12, 'rule empty: grace needs after_start, after_release or both']],
  'bad-predict': [
    [5, 55, 'rule leak: bad reaches "100 percent": expected a percentage of a field of the same line'],
    [5, 78, 'rule leak: bad duration'],
    [5, 96, 'rule leak: over must be between 1m and 6h'],
    [5, 114, 'rule leak: min_samples must be between 3 and 360'],
    [11, 40, 'rule plain: {{prediction}}: only a rule with predict: has a prediction'],
    [14, 55, 'rule itself: reaches: a percentage of sample#memory_total itself'],
    [14, 106, 'rule itself: unknown key "colour"'],
  ],
  'literal-heroku-token': [
    [4, 23, 'heroku_api_token must be an environment reference like ${MY_APP_HEROKU_TOKEN}'],
    [10, 16, 'rule restart: token must be an environment reference like ${HEROKU_API_TOKEN}'],
  ],
};

describe('loadRules: every mistake reported with its position', () => {
  it('has a fixture for every case and a case for every fixture', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.bad.yml')).map((f) => f.replace('.bad.yml', '')).sort();
    expect(files).toEqual(Object.keys(BAD).sort());
  });

  it.each(Object.entries(BAD))('%s', async (name, expected) => {
    const file = join(DIR, `${name}.bad.yml`);
    const r = await loadRules(file, {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(expected.length);
    r.errors.forEach((e, i) => {
      const [line, col, fragment] = expected[i]!;
      expect(formatRuleError(e)).toContain(`${file}:${line}:${col}: `);
      expect(e.message).toContain(fragment);
    });
  });

  it('accepts a good file and fills the defaults', async () => {
    const r = await loadRules(join(DIR, 'good-minimal.yml'), {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [rule] = r.ruleSet.rules;
    expect(rule).toMatchObject({ name: 'puma', source: 'heroku', count: 1, cooldownMs: 600_000, dryRun: false });
    expect(rule!.actions[0]).toMatchObject({ type: 'redis-stop-key', ttlMs: 60_000 });
    expect(rule!.actions[0]!.type === 'redis-stop-key' && rule!.actions[0]!.key.source).toBe('puma::stop::{{target}}');
    expect(r.ruleSet.limits).toEqual(DEFAULT_LIMITS);
    expect(r.ruleSet.apps).toBeUndefined();
  });

  it('refuses {{prediction}} where a key or a name is rendered (a sentence never has that shape), accepts it in a value or a text', () => {
    const rule = (action: string) => `version: 1
rules:
  - name: leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m }
    actions: [ ${action} ]
`;
    for (const action of ['{ type: redis-stop-key, key: "stop::{{prediction}}" }', '{ type: sidekiq-stop, hostname: "{{prediction}}" }', '{ type: heroku-restart, dyno: "{{prediction}}" }']) {
      const r = loadRulesText(rule(action), 'r.yml', {});
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.errors.map((e) => e.message).join('\n')).toContain('{{prediction}} is a sentence with spaces');
    }
    expect(loadRulesText(rule('{ type: redis-stop-key, value: "stop {{prediction}}" }'), 'r.yml', {}).ok).toBe(true);
  });

  it('keeps secrets as ${VAR} references and checks they are set', () => {
    const text = `version: 1
apps:
  acme-shop:
    drain_tokens: [d.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc]
    redis_url: \${APP_REDIS}
rules:
  - name: tell
    match: { process: "\${PROC}" }
    actions: [ { type: notify, url: "\${HOOK}" } ]
`;
    const env = { APP_REDIS: 'redis://:secret@h:6379', HOOK: 'https://hooks.example/T/x', PROC: 'web.1' };
    const r = loadRulesText(text, 'r.yml', env);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.ruleSet.apps?.get('acme-shop')).toMatchObject({ redisUrlRef: '${APP_REDIS}' });
    expect(r.ruleSet.appForDrainToken('d.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc')).toBe('acme-shop');
    expect(r.ruleSet.appForDrainToken('d.other')).toBeUndefined();
    expect(r.ruleSet.rules[0]!.actions[0]).toMatchObject({ type: 'notify', urlRef: '${HOOK}' });
    expect(r.ruleSet.rules[0]!.process!('web.1')).toBe(true);

    const bad = loadRulesText(text, 'r.yml', { ...env, HOOK: 'not a url' });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.errors.map(formatRuleError)).toEqual(['r.yml:9:37: rule tell: expected an http(s):// URL in ${HOOK}']);
    expect(JSON.stringify(bad.errors)).not.toContain('not a url');
  });

  it('never puts a literal secret in job data: the errors do not repeat it', async () => {
    for (const name of ['literal-notify-url', 'redis-url-with-password', 'literal-heroku-token', 'literal-telemetry-token']) {
      const r = await loadRules(join(DIR, `${name}.bad.yml`), {});
      expect(JSON.stringify(r)).not.toMatch(/hunter2|XXXXXXXX|456789abcdef|fir-literal-token/);
    }
  });

  it('accepts a Redis URL without a password, and a value mixing text with ${VAR} as a reference', () => {
    const text = `version: 1
apps:
  acme-shop:
    redis_url: redis://localhost:6379
    heroku_api_token: "tok-\${SHOP_TOKEN}"
rules:
  - name: tell
    match: { message: '^Error R14 ' }
    actions:
      - { type: notify, url: "https://hooks.slack.com/\${HOOK_PATH}" }
      - { type: redis-stop-key, redis_url: "redis://:\${PW}@h:6379" }
      - { type: sidekiq-stop, redis_url: "rediss://redis.internal:6380/2" }
`;
    const r = loadRulesText(text, 'r.yml', { SHOP_TOKEN: 'x', HOOK_PATH: 'services/T/B/x', PW: 'pw' });
    expect(r.ok ? [] : r.errors.map(formatRuleError)).toEqual([]);
    if (!r.ok) return;
    expect(r.ruleSet.apps?.get('acme-shop')).toMatchObject({ redisUrlRef: 'redis://localhost:6379', herokuTokenRef: 'tok-${SHOP_TOKEN}' });
    expect(r.ruleSet.rules[0]!.actions.map((a) => ('urlRef' in a ? a.urlRef : 'redisUrlRef' in a ? a.redisUrlRef : undefined)))
      .toEqual(['https://hooks.slack.com/${HOOK_PATH}', 'redis://:${PW}@h:6379', 'rediss://redis.internal:6380/2']);
  });

  it('reads limits with defaults for what is left out', () => {
    const r = loadRulesText('version: 1\nrules: []\nlimits: { per_app: { max_firings: 2 } }\n', 'r.yml', {});
    expect(r.ok && r.ruleSet.limits).toEqual({ ...DEFAULT_LIMITS, perApp: { maxFirings: 2, withinMs: 600_000 } });
  });

  it('reports an unreadable file at 1:1', async () => {
    const r = await loadRules(join(DIR, 'no-such-file.yml'), {});
    expect(!r.ok && formatRuleError(r.errors[0]!)).toMatch(/no-such-file\.yml:1:1: cannot read rules file: ENOENT/);
  });
});
