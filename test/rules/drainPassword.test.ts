import { describe, expect, it } from 'vitest';
import { loadRulesText } from '../../src/rules/load.js';
import { secretDigest } from '../../src/basicAuth.js';

const rules = (value: string) => `version: 1
apps:
  my-app:
    drain_password: ${value}
rules:
  - name: r14
    match: { message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`;

describe('apps.NAME.drain_password', () => {
  it('is kept as the digest of the expanded reference, never as the password', () => {
    const r = loadRulesText(rules('${MY_DRAIN_PW}'), 'rules.yml', { MY_DRAIN_PW: 'a-good-password' });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const entry = r.ruleSet.apps!.get('my-app')!;
    expect(entry.drainPasswordDigest!.equals(secretDigest('a-good-password'))).toBe(true);
    expect(JSON.stringify(entry)).not.toContain('a-good-password');
  });

  it('with its variable unset (mallet check --allow-unset-env) fails closed: no password opens the app', () => {
    const r = loadRulesText(rules('${MY_DRAIN_PW}'), 'rules.yml', {}, { allowUnsetEnv: true });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const digest = r.ruleSet.apps!.get('my-app')!.drainPasswordDigest;
    expect(digest).toBeDefined();
    expect(digest!.equals(secretDigest(''))).toBe(false);
  });

  it.each([
    ['a literal', 'literal-password', {}, /drain_password must be an environment reference like \$\{MY_APP_DRAIN_PASSWORD\}/],
    ['an unset variable', '${MY_DRAIN_PW}', {}, /environment variable MY_DRAIN_PW is not set/],
    ['a short password', '${MY_DRAIN_PW}', { MY_DRAIN_PW: 'short' }, /drain_password in \$\{MY_DRAIN_PW\}: use at least 8 characters/],
    ['a password with a colon', '${MY_DRAIN_PW}', { MY_DRAIN_PW: 'has:colon-inside' }, /must not contain ":"/],
  ])('refuses %s, at its position, without showing the value', (_name, value, env, message) => {
    const r = loadRulesText(rules(value), 'rules.yml', env);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ line: 4, col: 21 });
    expect(r.errors[0]!.message).toMatch(message);
    for (const v of Object.values(env)) expect(r.errors[0]!.message).not.toContain(v);
    expect(r.errors[0]!.message).not.toContain('literal-password');
  });
});
