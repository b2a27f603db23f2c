/**
 * What the syslog benchmark's stream asks of the pipeline: how many of its lines the listener's
 * prefilter keeps (pipeline.wants with the example rules and the dyno observer), by line kind,
 * and how many matches the rules then make of them. No Redis, no sockets: counts, not times.
 *
 *   node --import tsx bench/support/syslogKept.ts [--lines 1000000]
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import type { Redis } from 'ioredis';
import { LogplexStream } from '../../src/ingest/logplexStream.js';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { loadRulesText } from '../../src/rules/load.js';
import { matchEvent, mayMatch, type RuleMatch } from '../../src/rules/match.js';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { Pipeline } from '../../src/server/pipeline.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { BENCH_MARKER, BENCH_TOKEN, syslogStream } from './syslogStream.js';

const i = process.argv.indexOf('--lines');
const LINES = i >= 0 ? Number(process.argv[i + 1]) : 1_000_000;
const { stream, frames } = await syslogStream(LINES);
const rules = parse(readFileSync(new URL('../../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; apps?: unknown };
rules.apps = { 'bench-app': { drain_tokens: [BENCH_TOKEN] } };
rules.rules.push({ name: 'bench-marker', match: { source: 'app', message: `^${BENCH_MARKER}` }, cooldown: '1s', actions: [{ type: 'redis-stop-key', key: 'marker', ttl: '60s' }] });
const loaded = loadRulesText(stringify(rules), 'rules.yml', { HEROKU_API_TOKEN: 'x' });
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;
const observer = new DynoObserver(new MemoryDynoStore());
const pipeline = new Pipeline({
  redis: { defineCommand: () => {} } as unknown as Redis, keys: redisKeys('bench'), metrics: createMetrics(undefined, { defaults: false }), logger: pino({ level: 'silent' }),
  engine: { judge: async () => ({ firings: [], count: () => {} }), mayMatch: (event) => mayMatch(ruleSet.rules, event) },
  sink: { submit: async () => [] }, observers: [observer],
});
const kinds = new Map<string, { kept: number; byRules: number; byObserver: number; matches: number }>();
const byRule = new Map<string, number>();
const kind = (e: DrainEvent) => {
  if (e.source === 'heroku' && e.process === 'router') return 'heroku router';
  if (e.source === 'heroku') return `heroku ${e.process.replace(/\.\d+$/, '.N')}`;
  return `${e.source} ${e.process.replace(/\.\d+$/, '.N')}`;
};
let kept = 0;
const stream_ = new LogplexStream({ structuredData: true, keep: (line) => pipeline.wants(line) });
// The whole stream as one push: the messages are views over it, read after the scan.
const parsed = stream_.push(stream);
const matches: RuleMatch[] = [];
for (const e of drainEvents({ app: 'bench-app', drainToken: BENCH_TOKEN, frameId: 's', dedupe: false, receivedAt: 0, messages: parsed.messages })) {
  kept++;
  const k = kind(e);
  const row = kinds.get(k) ?? { kept: 0, byRules: 0, byObserver: 0, matches: 0 };
  kinds.set(k, row);
  row.kept++;
  if (mayMatch(ruleSet.rules, e)) row.byRules++;
  if ((e.lineClass! & observer.lineClasses) !== 0 && (observer.mayWant === undefined || observer.mayWant(e))) row.byObserver++;
  matches.length = 0;
  matchEvent(ruleSet.rules, e, matches);
  row.matches += matches.length;
  for (const x of matches) byRule.set(x.rule.name, (byRule.get(x.rule.name) ?? 0) + 1);
}
console.log(`${frames} lines, ${kept} kept by the prefilter (${(100 * kept / frames).toFixed(2)} %)`);
console.log('| kind | kept | rules may match | observer may want | rule matches |\n|---|---:|---:|---:|---:|');
for (const [k, r] of [...kinds].sort((a, b) => b[1].kept - a[1].kept)) console.log(`| ${k} | ${r.kept} | ${r.byRules} | ${r.byObserver} | ${r.matches} |`);
console.log('matches by rule:', Object.fromEntries(byRule));
