/**
 * What a predict rule costs the drain: parse + match + evaluate with the example rules against
 * the same without `web-memory-predict`, over the same corpus in the same run. The stores are the
 * in-memory mirrors (the Redis round trip is one pipeline per body that has a sample of a predict
 * rule: counted, not timed, here). Lines that are not samples of a predict rule should cost
 * nothing: the ratio shows what the samples themselves cost.
 *   node --import tsx bench/predict.bench.ts [--lines 200000] [--rounds 5]
 */
import { readFileSync } from 'node:fs';
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { loadRules } from '../src/rules/load.js';
import { evaluateEvents } from '../src/rules/evaluate.js';
import { MemoryThresholdStore } from '../src/rules/thresholdMemory.js';
import { MemoryPredictStore } from '../src/rules/predictMemory.js';
import type { PredictStore } from '../src/rules/predictScript.js';
import type { CompiledRuleSet } from '../src/rules/CompiledRule.js';
import { redisKeys } from '../src/keys.js';
import { ensureCorpus } from './corpus.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 200_000);
const ROUNDS = arg('rounds', 5);

const loaded = await loadRules('config/rules.example.yml', {});
if (!loaded.ok) throw new Error('example rules invalid');
const withPredict = loaded.ruleSet;
if (!withPredict.rules.some((r) => r.predict)) throw new Error('the example rules have no predict rule');
const without: CompiledRuleSet = { ...withPredict, rules: Object.freeze(withPredict.rules.filter((r) => !r.predict)) };
const corpus = await ensureCorpus(LINES);
const data = readFileSync(corpus.file);
const bodies = corpus.index.map((b) => data.subarray(b.offset, b.offset + b.length));
const totalLines = corpus.index.reduce((n, b) => n + b.msgCount, 0);

let samples = 0;
let calls = 0;
const memory = new MemoryPredictStore();
const predictor: PredictStore = { predict: (v) => { samples += v.length; calls++; return memory.predict(v); } };
const keys = redisKeys('bench');

let sink = 0;
async function run(ruleSet: CompiledRuleSet): Promise<void> {
  const store = new MemoryThresholdStore();
  const now = Date.now();
  for (const body of bodies) {
    const events = drainEvents({ app: 'acme-shop', drainToken: 'd.bench', frameId: 'frame', dedupe: true, receivedAt: now, messages: parseLogplexBody(body).messages });
    const e = await evaluateEvents(events, { ruleSet, store, predictor, keys, clock: (ev) => ev.receivedAt });
    sink += e.firings.length;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = async (rs: CompiledRuleSet) => {
  (globalThis as { gc?: () => void }).gc?.();
  const t = process.hrtime.bigint();
  await run(rs);
  return totalLines / (Number(process.hrtime.bigint() - t) / 1e9);
};
await run(without); await run(withPredict); // warm-up
samples = 0; calls = 0;
await run(withPredict);
const perPass = { samples, calls };
const base: number[] = [], pred: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const p of r % 2 === 0 ? [false, true] : [true, false]) (p ? pred : base).push(await rate(p ? withPredict : without));
}
const b = median(base), p = median(pred);
console.log(`corpus: ${totalLines} lines, ${bodies.length} bodies; per pass ${perPass.samples} samples reached the predictor in ${perPass.calls} bodies (${(100 * perPass.samples / totalLines).toFixed(2)} % of lines)`);
console.log('| contender | lines/s (median of ' + ROUNDS + ') | ratio |');
console.log('|---|---:|---:|');
console.log(`| parse + match + evaluate, example rules without the predict rule | ${Math.round(b).toLocaleString('en')} | 1.00 |`);
console.log(`| the same with web-memory-predict | ${Math.round(p).toLocaleString('en')} | ${(p / b).toFixed(2)} |`);
if (sink < 0) console.log(sink);
