/**
 * The observer stage's cost on the drain: parse + match + observers against parse + match, over
 * the same corpus in the same run (as in rules.bench.ts, the Redis round trips are left out: the
 * rules' threshold vote per matched line; the observers' write is built in full, arguments and
 * all, by the service's RedisDynoStore and RedisLifeStore, as the parts of the body script the
 * pipeline hands on, and counted).
 * Target: ≥ 0.90 × parse + match.
 *
 *   node --import tsx --expose-gc bench/observers.bench.ts [--lines 200000] [--rounds 16]
 *     rounds of ABBA passes (BAAB the next), a full collection and a pause before each round
 *     only; the ratio of the summed CPU times, with the rounds' ratios for the spread. On a
 *     loaded machine prefer:
 *   node --import tsx bench/observers.bench.ts --callgrind [--lines 20000] [--passes 3] [--warmup 20]
 *     each contender in its own `valgrind --tool=callgrind` process, instructions counted only
 *     over the measured passes (after the warm-up passes): a count that the neighbours' load
 *     does not change. valgrind runs with --fair-sched=yes: its default lock hand-off let the
 *     main thread starve V8's compiler threads, so with a 20 000-line corpus the observer
 *     contender was still compiling (its other threads 2 600 instructions/line during the
 *     measured passes, and wants(), pushSampleGroups and others running as Sparkplug code):
 *     0.84–0.95× from run to run on the same code, 0.937× with fair scheduling, where the main
 *     thread's count equals all threads' (docs/benchmarks.md, 2026-12-03). --unfair-sched gives
 *     the old runs. --keep DIR keeps the callgrind.out files there (DIR/baseline-01 and
 *     DIR/observers-01 are the main threads) for callgrind_annotate; --perf-basic-prof has V8
 *     write /tmp/perf-PID.map, which names the JIT code callgrind shows as bare addresses.
 *   node --import tsx bench/observers.bench.ts --alloc [--sites] [--lines 20000] [--passes 3]
 *     bytes allocated per line and scavenges per pass of each contender, each in its own process
 *     (bench/support/allocation.ts); --sites adds the allocating functions (sampling heap profile).
 *   --store (with any mode): the observers write by store() rather than as parts of the body
 *     script (the service's path, Pipeline.#ingestBody).
 *
 * Each contender parses with the prefilter it would have in the service (Pipeline.wants): the
 * baseline keeps the lines the example rules could match, the observer contender also the dyno
 * lines the observer reads (its mayWant), so the lines it makes the parser keep are part of what
 * it costs. --no-prefilter (any mode): every line a message in both, the path before the drain
 * had a prefilter.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import { BodyPrefilter } from '../src/ingest/bodyPrefilter.js';
import { wantsDynoLine } from '../src/dynos/dynoLines.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { matchEvent, mayMatch, type RuleMatch } from '../src/rules/match.js';
import { NOTHING, observeAll } from '../src/observe/Observer.js';
import { DynoObserver } from '../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../src/dynos/lifeScript.js';
import { redisKeys } from '../src/keys.js';
import { ensureCorpus } from './corpus.js';
import { exampleRulesAndCorpus, numberArg } from './support/benchInputs.js';

const flag = (name: string) => process.argv.includes(`--${name}`);
const option = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

/**
 * Warm-up passes before callgrind counts. With 2, TurboFan was still compiling the observer code
 * during the measured passes (its threads' instructions were a third or more of that contender's
 * count, and two runs of the same code differed by 40 %): the count measured the JIT warming up,
 * not the drain's steady cost. After 8 they are mostly done, but two runs of the same baseline
 * still differed by 4.5 % on the main thread alone (5,400 vs 5,644 instructions/line): 20.
 */
const WARMUP = 20;

if (flag('callgrind')) {
  await callgrind();
  process.exit(0);
}
if (flag('alloc')) {
  await allocation();
  process.exit(0);
}

const contender = option('contender');
const LINES = numberArg('lines', contender ? 20_000 : 200_000);
// Even, so ABBA and BAAB rounds are as many: whichever contender runs first after the pause
// pays for what the pause left (a run of 15 at load 0.2: ABBA rounds 0.94, BAAB 0.84), and an
// odd count leant the sum towards the contender first in the extra round.
const ROUNDS = Math.ceil(numberArg('rounds', 16) / 2) * 2;

const { rules, bodies, totalLines } = await exampleRulesAndCorpus(LINES);
const prefilters = flag('no-prefilter') ? undefined : {
  baseline: new BodyPrefilter((e) => mayMatch(rules, e)),
  observers: new BodyPrefilter((e) => mayMatch(rules, e) || wantsDynoLine(e)),
};

let writes = 0;
let writeArgs = 0;
/** What RedisDynoStore and RedisLifeStore need of ioredis: their scripts' commands, here counting their arguments (store()'s path). */
const redisStandIn = {
  malletDynos: async (...args: unknown[]) => { writes++; writeArgs += args.length; return 1; },
  malletLife: async (...args: unknown[]) => { writes++; writeArgs += args.length; return 1; },
} as unknown as Redis;
const keys = redisKeys('bench');
// A fresh observer per pass: what it remembers of the last pass must not help the next one. The
// service's stores: the dyno records and the rules' lifecycle view (instanceLife.ts).
const observers = () => [new DynoObserver(new RedisDynoStore(redisStandIn, keys), undefined, new RedisLifeStore(redisStandIn, keys))];
/**
 * The service's path (Pipeline.#ingestBody): the observation's writes as parts of the body's one
 * script call, then written(); `--store` takes store() instead, the path of a store without parts
 * (and the bench's before the body script).
 */
const viaStore = flag('store');

let sink = 0;
/**
 * The last body's events and observation of each contender, held until its next pass. Without
 * them nothing of a pass outlived it, so the full collection the timed mode forces before each
 * pass collected the maps of its objects (hidden classes: a message's, an observation's), and
 * V8 threw away the optimised code built on them ("weak objects" in --trace-deopt): every pass
 * paid TurboFan again, and the observer contender, with more code, paid more. The service keeps
 * such objects alive (deliveries in flight, its one observer).
 */
const retained: Record<string, unknown> = {};
async function run(observe: boolean): Promise<void> {
  // Line times as sent, one receivedAt per pass: the corpus spans half an hour of log.
  const now = Date.now();
  const obs = observe ? observers() : [];
  for (const body of bodies) {
    const { messages, passedOver, linesAfter } = parseLogplexBody(body, observe ? prefilters?.observers : prefilters?.baseline);
    const events = drainEvents({ app: 'acme-shop', drainToken: 'd.bench', frameId: 'frame', dedupe: true, receivedAt: now, messages, passedOver, linesAfter });
    const out: RuleMatch[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      sink += e.source.length + e.process.length;
      matchEvent(rules, e, out);
    }
    sink += out.length;
    retained[String(observe)] = [events, obs];
    if (!observe) {
      // Awaited per body, as the pipeline awaits each delivery's script call (both contenders pay it).
      await undefined;
      continue;
    }
    const observation = observeAll(obs, 'acme-shop', events, []);
    if (observation !== NOTHING) retained.observation = observation;
    const parts = viaStore ? undefined : observation.parts?.();
    if (parts === undefined) {
      await observation.store();
      continue;
    }
    // What the body script is handed; its round trip is left out, as the votes' is.
    for (let i = 0; i < parts.length; i++) { writes++; writeArgs += parts[i]!.keys.length + parts[i]!.args.length; }
    await undefined;
    observation.written?.();
  }
}

if (contender !== undefined && option('measure') !== undefined) {
  // A child of --alloc: bytes allocated per pass, scavenges, allocation sites.
  const { measureAllocation } = await import('./support/allocation.js');
  console.log(JSON.stringify(await measureAllocation(option('measure')!, () => run(contender === 'observers'), {
    warmup: numberArg('warmup', WARMUP), passes: numberArg('passes', 3), lines: totalLines,
  })));
  process.exit(0);
}

if (contender !== undefined) {
  // A child of --callgrind: warm up, then count instructions over the measured passes only.
  const observe = contender === 'observers';
  for (let i = 0; i < numberArg('warmup', WARMUP); i++) await run(observe);
  const passes = numberArg('passes', 3);
  const ctl = (on: boolean) => execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
  ctl(true);
  for (let i = 0; i < passes; i++) await run(observe);
  ctl(false);
  console.log(JSON.stringify({ lines: totalLines * passes, writes: writes / (passes + numberArg('warmup', WARMUP)) }));
  process.exit(0);
}

const gc = (globalThis as { gc?: () => void }).gc;
/**
 * Before each round, not each pass: a full collection, then pauses until the process is quiet.
 * gc() returns with the sweeping still to do on V8's helper threads (5–30 ms of CPU in the 30 ms
 * after it, measured on this machine; ~2 ms with --single-threaded-gc), and process.cpuUsage
 * counts every thread, so before, that work landed in the contender timed next, at random
 * amounts: the rounds' scatter. The CPU of a pause (a sleep) is only that background work.
 */
const settle = async () => {
  gc?.();
  for (let i = 0; i < 20; i++) {
    const c = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const used = process.cpuUsage(c);
    if (used.user + used.system < 1000) return;
  }
};
const measure = async (observe: boolean) => {
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  await run(observe);
  const used = process.cpuUsage(c);
  return { wallS: Number(process.hrtime.bigint() - t) / 1e9, cpuUs: used.user + used.system };
};
// Warm-up: 6 passes each. With 2, the first timed round still caught TurboFan compiling (0.49–1.15
// against 0.8–0.9 for the rest, at load ~12, in either direction).
for (let i = 0; i < 6; i++) { await run(false); await run(true); }
writes = 0; writeArgs = 0;
await run(true);
const perPass = { writes, writeArgs };
const base: number[] = [], withObs: number[] = [], ratios: number[] = [], wallRatios: number[] = [];
let baseSum = 0, obsSum = 0;
/**
 * Each round times each contender twice, ABBA (BAAB the next round): a drift within the round
 * (a neighbour's load, the heap filling towards a collection) falls on both alike, and neither
 * always goes first after the settle. Scavenges fall where the allocation crosses the threshold,
 * so over the rounds each contender pays for what it allocates. The figure is the ratio of the
 * summed CPU times (every pass counted, an outlier weighed by its length, not dropped or made a
 * round of its own); the rounds' ratios show the spread.
 */
for (let r = 0; r < ROUNDS; r++) {
  await settle();
  const order = r % 2 === 0 ? [false, true, true, false] : [true, false, false, true];
  const m = { false: { wallS: 0, cpuUs: 0 }, true: { wallS: 0, cpuUs: 0 } };
  for (const observe of order) {
    const x = await measure(observe);
    m[`${observe}`].wallS += x.wallS;
    m[`${observe}`].cpuUs += x.cpuUs;
  }
  const b = m.false, o = m.true;
  baseSum += b.cpuUs;
  obsSum += o.cpuUs;
  base.push(b.cpuUs / 2 / totalLines);
  withObs.push(o.cpuUs / 2 / totalLines);
  ratios.push(b.cpuUs / o.cpuUs);
  wallRatios.push(b.wallS / o.wallS);
}
const ratio = baseSum / obsSum;
const sorted = [...ratios].sort((a, b) => a - b);
console.log(`corpus: ${totalLines} lines, ${bodies.length} bodies, ${rules.length} example rules; the observers wrote ${perPass.writes} times (${perPass.writeArgs} arguments) per pass`);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`per round (ABBA, 2 passes each), throughput with observers ÷ without (CPU time): ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`per round, the same in wall time: ${wallRatios.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`rounds: median ${median(ratios).toFixed(3)}, middle half ${sorted[Math.floor(ROUNDS / 4)]!.toFixed(2)}–${sorted[Math.floor((3 * ROUNDS) / 4)]!.toFixed(2)}`);
console.log(`| contender | CPU µs/line (median of ${ROUNDS} rounds) | lines/s | ratio (summed CPU, ${2 * ROUNDS} passes each) |`);
console.log('|---|---:|---:|---:|');
console.log(`| parse + match (baseline) | ${median(base).toFixed(3)} | ${Math.round(1e6 / median(base)).toLocaleString('en')} | 1.00 |`);
console.log(`| parse + match + observers | ${median(withObs).toFixed(3)} | ${Math.round(1e6 / median(withObs)).toLocaleString('en')} | ${ratio.toFixed(3)} |`);
console.log(`target ≥ 0.90 × parse + match: ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
if (sink < 0) console.log(sink);

/** The flags a child process of --callgrind or --alloc is run with. */
function childFlags(): string[] {
  return ['store', 'no-prefilter'].filter(flag).map((f) => `--${f}`);
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

async function callgrind(): Promise<void> {
  const lines = numberArg('lines', 20_000);
  const passes = numberArg('passes', 3);
  const warmup = numberArg('warmup', WARMUP);
  await ensureCorpus(lines);
  const self = fileURLToPath(import.meta.url);
  const count: Record<string, { ir: number; main: number; lines: number; writes: number }> = {};
  const keep = option('keep');
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'observers-callgrind-'));
  for (const c of ['baseline', 'observers']) {
    // Per thread (--separate-threads): the main thread's count beside the total. The other threads
    // are TurboFan's compiles (the JIT warming up, not the drain's steady cost: the warm-up note
    // above; with --fair-sched=yes they are done before the measured passes) and GC helpers; --single-threaded-gc keeps every collection on the main thread, so
    // what each contender's garbage costs is counted in full and the same way in both.
    const file = join(dir, c);
    const r = spawnSync('valgrind', ['--tool=callgrind', ...(flag('unfair-sched') ? [] : ['--fair-sched=yes']), '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${file}`,
      process.execPath, '--single-threaded-gc', ...(flag('perf-basic-prof') ? ['--perf-basic-prof'] : []), '--import', 'tsx', self, '--contender', c, '--lines', String(lines), '--passes', String(passes), '--warmup', String(warmup), ...childFlags()], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const ir = /Collected : (\d+)/.exec(r.stderr ?? '');
    const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !ir || !out.startsWith('{')) throw new Error(`callgrind run of ${c} failed (${r.status}): ${r.error ?? ''}\n${r.stderr?.slice(-2000)}`);
    const main = /^totals: (\d+)/m.exec(readFileSync(`${file}-01`, 'utf8'));
    const parsed = JSON.parse(out) as { lines: number; writes: number };
    count[c] = { ir: Number(ir[1]), main: Number(main?.[1] ?? Number.NaN), ...parsed };
  }
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
  else console.log(`callgrind files kept in ${dir} (callgrind_annotate ${dir}/observers-01)`);
  const b = count.baseline!, o = count.observers!;
  console.log(`callgrind, ${lines}-line corpus, ${passes} measured passes after ${warmup} warm-up passes, --single-threaded-gc; the observers wrote ${o.writes} times per pass`);
  console.log('| contender | instructions/line, main thread | ratio | all threads | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| parse + match (baseline) | ${Math.round(b.main / b.lines).toLocaleString('en')} | 1.00 | ${Math.round(b.ir / b.lines).toLocaleString('en')} | 1.00 |`);
  console.log(`| parse + match + observers | ${Math.round(o.main / o.lines).toLocaleString('en')} | ${(b.main / o.main).toFixed(3)} | ${Math.round(o.ir / o.lines).toLocaleString('en')} | ${(b.ir / o.ir).toFixed(3)} |`);
  console.log(`target ≥ 0.90 × parse + match (main thread): ${b.main / o.main >= 0.9 ? 'met' : 'NOT met'}`);
}

/**
 * --alloc: what each contender allocates, counted in child processes (bench/support/allocation.ts):
 * bytes per line (no collection during a pass), scavenges per pass at a fixed 16 MB semi-space,
 * and with --sites the allocating functions of the observer contender beside the baseline's.
 */
async function allocation(): Promise<void> {
  const { allocationFlags } = await import('./support/allocation.js');
  const lines = numberArg('lines', 20_000);
  const passes = numberArg('passes', 3);
  const warmup = numberArg('warmup', WARMUP);
  await ensureCorpus(lines);
  const self = fileURLToPath(import.meta.url);
  const child = (mode: 'bytes' | 'scavenges' | 'sites', c: string) => {
    const r = spawnSync(process.execPath, [...allocationFlags(mode), '--import', 'tsx', self, '--contender', c, '--measure', mode,
      '--lines', String(lines), '--passes', String(mode === 'scavenges' ? passes * 4 : passes), '--warmup', String(warmup), ...childFlags()], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !out.startsWith('{')) throw new Error(`--alloc ${mode} run of ${c} failed (${r.status}):\n${r.stderr?.slice(-2000)}`);
    return JSON.parse(out) as import('./support/allocation.js').AllocationResult;
  };
  const row: Record<string, { bytes: number; scavenges: number }> = {};
  for (const c of ['baseline', 'observers']) {
    const b = child('bytes', c);
    const s = child('scavenges', c);
    row[c] = { bytes: median(b.bytesPerPass!) / b.lines, scavenges: s.scavenges! / (passes * 4) };
  }
  const b = row.baseline!, o = row.observers!;
  console.log(`allocation, ${lines}-line corpus, median of ${passes} passes after ${warmup} warm-up passes (scavenges: ${passes * 4} passes, 16 MB semi-space)`);
  console.log('| contender | bytes allocated/line | scavenges/pass |');
  console.log('|---|---:|---:|');
  console.log(`| parse + match (baseline) | ${b.bytes.toFixed(1)} | ${b.scavenges.toFixed(2)} |`);
  console.log(`| parse + match + observers | ${o.bytes.toFixed(1)} | ${o.scavenges.toFixed(2)} |`);
  console.log(`the observers' extra: ${(o.bytes - b.bytes).toFixed(1)} bytes/line (${((o.bytes - b.bytes) * lines / 1024).toFixed(0)} KiB per pass)`);
  if (!flag('sites')) return;
  const sb = child('sites', 'baseline'), so = child('sites', 'observers');
  const base = new Map(sb.project!);
  console.log('sampled bytes per pass by nearest project function (observers | baseline | extra):');
  for (const [k, v] of so.project!) console.log(`  ${String(v).padStart(10)} ${String(base.get(k) ?? 0).padStart(10)} ${String(v - (base.get(k) ?? 0)).padStart(10)}  ${k}`);
  const baseSelf = new Map(sb.self!);
  console.log('sampled bytes per pass by allocating function (observers | baseline | extra):');
  for (const [k, v] of so.self!) console.log(`  ${String(v).padStart(10)} ${String(baseSelf.get(k) ?? 0).padStart(10)} ${String(v - (baseSelf.get(k) ?? 0)).padStart(10)}  ${k}`);
  const baseStacks = new Map(sb.stacks!);
  console.log('sampled bytes per pass by allocating stack, innermost first (observers | baseline | extra):');
  for (const [k, v] of so.stacks!) console.log(`  ${String(v).padStart(10)} ${String(baseStacks.get(k) ?? 0).padStart(10)} ${String(v - (baseStacks.get(k) ?? 0)).padStart(10)}  ${k}`);
}
