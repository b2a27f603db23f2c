import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { samplePath } from '../support/samples.js';
import { loadRules, loadRulesText } from '../../src/rules/load.js';
import { matchEvent, type RuleMatch } from '../../src/rules/match.js';
import type { CompiledRuleSet } from '../../src/rules/CompiledRule.js';
import { event, eventFromSample } from './events.js';

const family = (name: string) => readFileSync(samplePath('lines', `${name}.txt`), 'utf8').split('\n').filter((l) => l.length > 0).map((l) => eventFromSample(l));

async function example(): Promise<CompiledRuleSet> {
  const r = await loadRules('config/rules.example.yml', {});
  if (!r.ok) throw new Error('example rules invalid');
  return r.ruleSet;
}

function matched(rs: CompiledRuleSet, events: ReturnType<typeof family>): RuleMatch[] {
  const out: RuleMatch[] = [];
  for (const e of events) matchEvent(rs.rules, e, out);
  return out;
}

const names = (ms: RuleMatch[]) => ms.map((m) => `${m.rule.name} ${m.event.process}`);

describe('matching the example rules on every sample family', () => {
  it('runtime errors: R14/R15 of web dynos, R14 of workers; not R10/R12/R13', async () => {
    const ms = matched(await example(), family('runtime-errors'));
    expect(ms.length).toBeGreaterThan(0);
    for (const m of ms) {
      expect(m.event.source).toBe('heroku');
      expect(m.event.message).toMatch(/^Error R1[45] /);
    }
    expect(names(ms)).toContain('worker-memory-quota worker.1');
    expect(ms.some((m) => /^Error R1[0-3]/.test(m.event.message))).toBe(false);
  });

  it('app lines that imitate platform lines match nothing', async () => {
    expect(names(matched(await example(), family('app')))).toEqual([]);
  });

  it('router: only H12 at >= 29000ms, with the dyno from dyno=', async () => {
    const ms = matched(await example(), family('router'));
    expect(ms.length).toBeGreaterThan(0);
    for (const m of ms) {
      expect(m.rule.name).toBe('h12-storm');
      expect(m.fields?.get('code')).toBe('H12');
    }
  });

  it('runtime metrics: only samples over 90% of a stated quota', async () => {
    const ms = matched(await example(), family('runtime-metrics'));
    expect(ms.length).toBeGreaterThan(0);
    // A predict rule takes every sample of its dynos: the predictor, not the match, decides.
    for (const m of ms.filter((x) => x.rule.predict !== undefined)) expect(m.fields!.has('sample#memory_quota')).toBe(true);
    for (const m of ms.filter((x) => x.rule.predict === undefined)) {
      const total = parseFloat(m.fields!.get('sample#memory_total')!);
      const quota = parseFloat(m.fields!.get('sample#memory_quota')!);
      expect(total).toBeGreaterThan(0.9 * quota);
    }
  });

  it.each(['api-and-addons', 'logplex'])('%s: nothing', async (name) => {
    expect(names(matched(await example(), family(name)))).toEqual([]);
  });
});

describe('conditions', () => {
  const rs = (match: string) => {
    const r = loadRulesText(`version: 1\nrules:\n  - name: r\n    match: ${match}\n    actions: [ { type: redis-stop-key } ]\n`, 'r.yml', {});
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.ruleSet;
  };
  const hits = (set: CompiledRuleSet, e: ReturnType<typeof event>) => { const o: RuleMatch[] = []; matchEvent(set.rules, e, o); return o.length; };

  it('reads M as MB (R14 lines write 591M) and compares units', () => {
    const set = rs(`{ process: "web.*", message: '^Process running', fields: { mem: "> 512MB" } }`);
    expect(hits(set, event('heroku', 'web.1', 'Process running mem=591M(115.5%)'))).toBe(1);
    expect(hits(set, event('heroku', 'web.1', 'Process running mem=500M(97.6%)'))).toBe(0);
    expect(hits(set, event('heroku', 'web.1', 'Process running mem=1GB(200%)'))).toBe(1);
  });

  it('source any, app and the process glob', () => {
    const any = rs(`{ source: any, process: "w?b.*", message: 'boom' }`);
    expect(hits(any, event('app', 'web.1', 'x boom'))).toBe(1);
    expect(hits(any, event('heroku', 'wxb.12', 'boom'))).toBe(1);
    expect(hits(any, event('heroku', 'worker.1', 'boom'))).toBe(0);
    const app = rs(`{ source: app, message: 'boom' }`);
    expect(hits(app, event('heroku', 'web.1', 'boom'))).toBe(0);
  });

  it('ms vs s and a missing or empty field never match', () => {
    const set = rs(`{ process: router, fields: { service: ">= 29s" } }`);
    expect(hits(set, event('heroku', 'router', 'service=30001ms'))).toBe(1);
    expect(hits(set, event('heroku', 'router', 'service=28000ms'))).toBe(0);
    expect(hits(set, event('heroku', 'router', 'service='))).toBe(0);
    expect(hits(set, event('heroku', 'router', 'at=error'))).toBe(0);
  });

  it('a hostile 64 KiB line against a hostile pattern completes and is judged correctly', () => {
    const set = rs(`{ source: any, message: '(a+)+$' }`);
    const hostile = 'a'.repeat(64 * 1024 - 1) + '!';
    expect(hits(set, event('app', 'web.1', hostile))).toBe(0);
    expect(hits(set, event('app', 'web.1', 'a'.repeat(64 * 1024)))).toBe(1);
    const nested = rs(`{ source: any, message: '^(\\w+\\s?)*$' }`);
    expect(hits(nested, event('app', 'web.1', 'word '.repeat(13_000) + '!'))).toBe(0);
  });
});
