import { describe, expect, it } from 'vitest';
import { formatRuleError, loadRulesText } from '../../src/rules/load.js';
import { resolveMatch } from '../../src/rules/resolve.js';
import { matchEvent, type RuleMatch } from '../../src/rules/match.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';

const GOOD = `version: 1
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
    on_failure:
      - type: heroku-restart
      - type: notify
        url: \${HOOK}
        text: "restarting {{target}}"
`;

describe('on_failure (escalation) in the rules file', () => {
  it('is compiled like actions and resolved per firing', () => {
    const r = loadRulesText(GOOD, 'rules.yml', { HOOK: 'https://hooks.example/x' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const rule = r.ruleSet.rules[0]!;
    expect(rule.onFailure.map((a) => a.type)).toEqual(['heroku-restart', 'notify']);
    const event = { id: 'e1', app: 'my-app', source: 'heroku', process: 'web.3', message: 'Error R14 (Memory quota exceeded)', timestamp: '2026-12-01T00:00:00Z', receivedAt: 0 } as unknown as DrainEvent;
    const matches: RuleMatch[] = [];
    matchEvent(r.ruleSet.rules, event, matches);
    const resolved = resolveMatch(matches[0]!);
    expect(resolved.ok && resolved.onFailure).toEqual([
      { type: 'heroku-restart', app: 'my-app', scope: 'dyno', dyno: 'web.3' },
      { type: 'notify', urlRef: '${HOOK}', text: 'restarting web.3' },
    ]);
  });

  it('reports its mistakes with their positions, like actions', () => {
    const r = loadRulesText(`version: 1
rules:
  - name: puma-r14
    match: { message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
    on_failure:
      - type: heroku-restart
        dyno: "{{dyno}}"
      - type: reboot
`, 'rules.yml', {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.errors.map(formatRuleError);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^rules\.yml:9:\d+: .*unknown action type "reboot"/),
    ]));
  });

  it('an empty on_failure is an error', () => {
    const r = loadRulesText(`version: 1
rules:
  - name: puma-r14
    match: { message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
    on_failure: []
`, 'rules.yml', {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map(formatRuleError)).toEqual([expect.stringMatching(/^rules\.yml:6:\d+: .*on_failure needs at least one action/)]);
  });
});
