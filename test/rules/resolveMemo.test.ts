import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadRules, loadRulesText } from '../../src/rules/load.js';
import { resolveMatch, resolveMatchAfresh } from '../../src/rules/resolve.js';
import type { CompiledRule } from '../../src/rules/CompiledRule.js';
import { event } from './events.js';

/**
 * resolveMatch keeps a rule's resolution per PROCID when its templates read only the header
 * (resolve.ts): every line, in any order of kinds, apps and sources, must resolve as it would
 * afresh, rejections included (never kept), and a rule reading the line is never answered from it.
 */
describe('resolveMatch with kept resolutions', () => {
  const rulesText = `version: 1
rules:
  - name: header-only
    match: { process: "*" }
    actions:
      - { type: redis-stop-key, key: "stop::{{app}}::{{target}}", value: "{{rule}} {{source}}", ttl: 60s }
      - { type: heroku-restart }
    on_failure: [ { type: heroku-restart, scope: process-type } ]
  - name: reads-the-line
    match: { process: "*", message: "^(?P<word>\\\\w+)" }
    target: "{{process}}"
    actions: [ { type: redis-stop-key, key: "k::{{captures.word}}", value: "{{message}}" } ]
`;
  it('answers as afresh, for every order of kinds', async () => {
    const loaded = loadRulesText(rulesText, 'r.yml', {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const example = await loadRules('config/rules.example.yml', {});
    if (!example.ok) throw new Error('example rules invalid');
    const rules: CompiledRule[] = [...loaded.ruleSet.rules, ...example.ruleSet.rules];
    // A few PROCIDs (one not a dyno name, one not a key: rejected), apps (one not an app name) and sources.
    const line = fc.record({
      rule: fc.integer({ min: 0, max: rules.length - 1 }),
      process: fc.constantFrom('web.1', 'web.2', 'worker.1', 'router', 'run.3', 'web-1a2b3c4d5-x9y8z', 'bad process', 'web.1\n'),
      app: fc.constantFrom('acme-shop', 'other-app', 'Bad_App'),
      source: fc.constantFrom('heroku', 'app'),
      word: fc.constantFrom('Error', 'x', 'source'),
    });
    fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 30 }), (lines) => {
      for (const l of lines) {
        const e = event(l.source, l.process, `${l.word} R14 sample#memory_total=100MB`, { app: l.app });
        const m = { rule: rules[l.rule]!, event: e, captures: { word: l.word }, fields: undefined };
        expect(resolveMatch(m)).toEqual(resolveMatchAfresh(m));
        expect(resolveMatch(m, 'web.1 reaches 512 MB now at 9 MB/h')).toEqual(resolveMatchAfresh(m, 'web.1 reaches 512 MB now at 9 MB/h'));
      }
    }), { numRuns: 300 });
  });

  it('keeps a header-only rule\'s resolution per PROCID, and never one of a rule reading the line', () => {
    const loaded = loadRulesText(rulesText, 'r.yml', {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const [headerOnly, readsLine] = loaded.ruleSet.rules as [CompiledRule, CompiledRule];
    const at = (rule: CompiledRule, process: string, word: string) => {
      const r = resolveMatch({ rule, event: event('heroku', process, `${word} R14`, { app: 'acme-shop' }), captures: { word }, fields: undefined });
      if (!r.ok) throw new Error(r.reason);
      return r;
    };
    const first = at(headerOnly, 'web.7', 'Error');
    const again = at(headerOnly, 'web.7', 'Other');
    // The same frozen actions, not equal copies: answered from the kept resolution.
    expect(again.actions).toBe(first.actions);
    expect(again.triggerLine).not.toBe(first.triggerLine);
    expect(at(headerOnly, 'web.8', 'Error').actions).not.toBe(first.actions);
    const a = at(readsLine, 'web.7', 'Error');
    const b = at(readsLine, 'web.7', 'Error');
    expect(b.actions).not.toBe(a.actions);
    expect(b.actions).toEqual(a.actions);
  });
});
