/**
 * Rules matching throughput: parse + match with the example rules against parse alone, over the
 * same corpus in the same run (matching only: the threshold round trip happens per matched line,
 * which is rare). Target: parse+match ≥ 0.6 × parse alone. Also times a hostile 64 KiB line
 * against a backtracking-bait pattern (RE2 keeps it linear).
 *   node --import tsx bench/rules.bench.ts [--lines 200000] [--rounds 7]
 */
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import type { DrainEvent } from '../src/ingest/DrainEvent.js';
import type { SyslogMessage } from '../src/ingest/SyslogMessage.js';
import type { IngestBatch } from '../src/ingest/IngestBatch.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { loadRulesText } from '../src/rules/load.js';
import { matchEvent, type RuleMatch } from '../src/rules/match.js';
import { exampleRulesAndCorpus, numberArg } from './support/benchInputs.js';

const LINES = numberArg('lines', 200_000);
const ROUNDS = numberArg('rounds', 7);

const { rules, data, bodies, totalLines } = await exampleRulesAndCorpus(LINES);

/** What ingest hands the rules: the pipeline's own DrainEvent over the lazily decoded message. */
function batchOf(messages: readonly SyslogMessage[], now: number): IngestBatch {
  return { app: 'acme-shop', drainToken: 'd.bench', frameId: 'frame', dedupe: true, receivedAt: now, messages };
}

let sink = 0;
function parseOnly(): void {
  const now = Date.now();
  for (const body of bodies) {
    const events = drainEvents(batchOf(parseLogplexBody(body).messages, now));
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      sink += e.source.length + e.process.length;
    }
  }
}

function parseAndMatch(): number {
  const now = Date.now();
  let matchedLines = 0;
  for (const body of bodies) {
    const events = drainEvents(batchOf(parseLogplexBody(body).messages, now));
    // One array per body, as evaluateEvents keeps per batch: matches do not outlive their body.
    const out: RuleMatch[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      sink += e.source.length + e.process.length;
      matchEvent(rules, e, out);
    }
    matchedLines += out.length;
  }
  return matchedLines;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const parse: number[] = [];
const match: number[] = [];
let matched = 0;
parseOnly(); matched = parseAndMatch(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  let t = process.hrtime.bigint();
  parseOnly();
  parse.push(totalLines / (Number(process.hrtime.bigint() - t) / 1e9));
  t = process.hrtime.bigint();
  parseAndMatch();
  match.push(totalLines / (Number(process.hrtime.bigint() - t) / 1e9));
}
const p = median(parse);
const m = median(match);
console.log(`corpus: ${totalLines} lines, ${(data.length / 2 ** 20).toFixed(1)} MiB, ${rules.length} example rules, ${matched} lines matched`);
console.log('| contender | lines/s (median of ' + ROUNDS + ') | ratio |');
console.log('|---|---:|---:|');
console.log(`| parse alone (baseline) | ${Math.round(p).toLocaleString('en')} | 1.00 |`);
console.log(`| parse + match | ${Math.round(m).toLocaleString('en')} | ${(m / p).toFixed(2)} |`);
console.log(`target parse+match ≥ 0.60 × parse alone: ${m / p >= 0.6 ? 'met' : 'NOT met'}`);

// `$`-anchored bait lets RE2 scan from the end; the unanchored one forces a full forward scan.
for (const [pattern, text] of [['(a+)+$', 'a'.repeat(64 * 1024 - 1) + '!'], ['(a|aa)+b', 'a'.repeat(64 * 1024)], ['^(\\w+\\s?)*$', 'word '.repeat(13_107) + '!']] as const) {
  const bait = loadRulesText(`version: 1\nrules:\n  - name: bait\n    match: { source: any, message: '${pattern}' }\n    actions: [ { type: redis-stop-key } ]\n`, 'bait.yml', {});
  if (!bait.ok) throw new Error('bait rules invalid');
  const ev: DrainEvent = { app: 'acme-shop', id: 'x', receivedAt: 0, timestamp: '-', source: 'app', process: 'web.1', message: text };
  const times: number[] = [];
  for (let r = 0; r < 21; r++) {
    const out: RuleMatch[] = [];
    const t = process.hrtime.bigint();
    matchEvent(bait.ruleSet.rules, ev, out);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (out.length !== 0) throw new Error('hostile line must not match');
  }
  console.log(`hostile ${(text.length / 1024).toFixed(0)} KiB line vs ${pattern}: ${median(times).toFixed(3)} ms median of 21 (no match)`);
}
if (sink < 0) console.log(sink);
