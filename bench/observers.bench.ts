/**
 * The observer stage's cost on the drain: parse + match + observers against parse + match, over
 * the same corpus in the same run (as in rules.bench.ts, the Redis round trips are left out: the
 * rules' threshold vote per matched line, the observers' one write per body that has dyno lines).
 * Target: ≥ 0.90 × parse + match.
 *   node --import tsx bench/observers.bench.ts [--lines 200000] [--rounds 7]
 */
import { readFileSync } from 'node:fs';
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { loadRules } from '../src/rules/load.js';
import { matchEvent, type RuleMatch } from '../src/rules/match.js';
import { observeAll } from '../src/observe/Observer.js';
import { DynoObserver } from '../src/dynos/DynoObserver.js';
import type { DynoBatch } from '../src/dynos/DynoRecord.js';
import type { DynoStore } from '../src/dynos/DynoStore.js';
import type { LifeBatch, LifeStore } from '../src/dynos/instanceLife.js';
import { ensureCorpus } from './corpus.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 200_000);
const ROUNDS = arg('rounds', 7);

const loaded = await loadRules('config/rules.example.yml', {});
if (!loaded.ok) throw new Error('example rules invalid');
const rules = loaded.ruleSet.rules;
const corpus = await ensureCorpus(LINES);
const data = readFileSync(corpus.file);
const bodies = corpus.index.map((b) => data.subarray(b.offset, b.offset + b.length));
const totalLines = corpus.index.reduce((n, b) => n + b.msgCount, 0);

let records = 0;
/** Counts what would be written; the write itself is one EVALSHA per body, measured elsewhere. */
const countingStore: DynoStore = {
  async write(_app: string, b: DynoBatch) { records += b.samples.length + b.events.length; },
  async read() { return { instances: [], events: [] }; },
};
/** The rules' lifecycle view (instanceLife.ts), built per body as the service does; its write is the second EVALSHA. */
const countingLife: LifeStore = {
  async write(_app: string, b: LifeBatch) { records += b.releases.length + b.starts.length + b.samples.length; },
  async read() { return { releases: [], dynos: new Map() }; },
};
const observers = [new DynoObserver(countingStore, undefined, countingLife)];

let sink = 0;
async function run(observe: boolean): Promise<void> {
  const now = Date.now();
  for (const body of bodies) {
    const events = drainEvents({ app: 'acme-shop', drainToken: 'd.bench', frameId: 'frame', dedupe: true, receivedAt: now, messages: parseLogplexBody(body).messages });
    const out: RuleMatch[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      sink += e.source.length + e.process.length;
      matchEvent(rules, e, out);
    }
    sink += out.length;
    // Awaited per body, as the pipeline awaits each delivery (both contenders pay the await).
    await (observe ? observeAll(observers, 'acme-shop', events, []).store() : undefined);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gc = (globalThis as { gc?: () => void }).gc;
const cpuPerLine = async (f: () => Promise<void>) => {
  gc?.();
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  await f();
  const used = process.cpuUsage(c);
  return { rate: totalLines / (Number(process.hrtime.bigint() - t) / 1e9), cpuUs: (used.user + used.system) / totalLines };
};
await run(false); await run(true); // warm-up
records = 0;
await run(true);
const perRound = records;
const base: number[] = [], withObs: number[] = [], baseCpu: number[] = [], obsCpu: number[] = [];
// Alternating which goes first, so neither always pays the other's garbage or a noisy neighbour.
for (let r = 0; r < ROUNDS; r++) {
  for (const observe of r % 2 === 0 ? [false, true] : [true, false]) {
    const m = await cpuPerLine(() => run(observe));
    (observe ? withObs : base).push(m.rate);
    (observe ? obsCpu : baseCpu).push(m.cpuUs);
  }
}
const p = median(base);
const o = median(withObs);
console.log(`corpus: ${totalLines} lines, ${bodies.length} bodies, ${rules.length} example rules, ${perRound} dyno records observed per pass`);
console.log('| contender | lines/s (median of ' + ROUNDS + ') | CPU µs/line | ratio |');
console.log('|---|---:|---:|---:|');
console.log(`| parse + match (baseline) | ${Math.round(p).toLocaleString('en')} | ${median(baseCpu).toFixed(3)} | 1.00 |`);
console.log(`| parse + match + observers | ${Math.round(o).toLocaleString('en')} | ${median(obsCpu).toFixed(3)} | ${(o / p).toFixed(2)} |`);
console.log(`target ≥ 0.90 × parse + match: ${o / p >= 0.9 ? 'met' : 'NOT met'}`);
if (sink < 0) console.log(sink);
