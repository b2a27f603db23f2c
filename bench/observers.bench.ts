/**
 * The observer stage's cost on the drain: parse + match + observers against parse + match, over
 * the same corpus in the same run (as in rules.bench.ts, the Redis round trips are left out: the
 * rules' threshold vote per matched line; the observers' write is built in full, arguments and
 * all, by the service's RedisDynoStore and RedisLifeStore, as the parts of the body script the
 * pipeline hands on, and counted).
 * Target: ≥ 0.90 × parse + match.
 *
 *   node --import tsx --expose-gc bench/observers.bench.ts [--lines 200000] [--rounds 9]
 *     alternating rounds (which contender goes first alternates too); per round the ratio of the
 *     two CPU times, then the median of the rounds. On a loaded machine prefer:
 *   node --import tsx bench/observers.bench.ts --callgrind [--lines 20000] [--passes 3] [--warmup 8]
 *     each contender in its own `valgrind --tool=callgrind` process, instructions counted only
 *     over the measured passes (after the warm-up passes): a count that the neighbours' load
 *     does not change.
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
 * not the drain's steady cost. After 8 they are mostly done (a run can still catch a late compile
 * or a collection: repeat one that looks off).
 */
const WARMUP = 8;

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
const ROUNDS = numberArg('rounds', 9);

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
const measure = async (observe: boolean) => {
  gc?.();
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  await run(observe);
  const used = process.cpuUsage(c);
  return { wallS: Number(process.hrtime.bigint() - t) / 1e9, cpuUs: used.user + used.system };
};
await run(false); await run(true); await run(false); await run(true); // warm-up
writes = 0; writeArgs = 0;
await run(true);
const perPass = { writes, writeArgs };
const base: number[] = [], withObs: number[] = [], ratios: number[] = [], wallRatios: number[] = [];
// Alternating which goes first, so neither always pays the other's garbage or a noisy neighbour.
for (let r = 0; r < ROUNDS; r++) {
  const m: Record<string, { wallS: number; cpuUs: number }> = {};
  for (const observe of r % 2 === 0 ? [false, true] : [true, false]) m[String(observe)] = await measure(observe);
  const b = m.false!, o = m.true!;
  base.push(b.cpuUs / totalLines);
  withObs.push(o.cpuUs / totalLines);
  ratios.push(b.cpuUs / o.cpuUs);
  wallRatios.push(b.wallS / o.wallS);
}
const ratio = median(ratios);
console.log(`corpus: ${totalLines} lines, ${bodies.length} bodies, ${rules.length} example rules; the observers wrote ${perPass.writes} times (${perPass.writeArgs} arguments) per pass`);
console.log(`per round, throughput with observers ÷ without (CPU time): ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`per round, the same in wall time: ${wallRatios.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`| contender | CPU µs/line (median of ${ROUNDS}) | lines/s | ratio (median of rounds) |`);
console.log('|---|---:|---:|---:|');
console.log(`| parse + match (baseline) | ${median(base).toFixed(3)} | ${Math.round(1e6 / median(base)).toLocaleString('en')} | 1.00 |`);
console.log(`| parse + match + observers | ${median(withObs).toFixed(3)} | ${Math.round(1e6 / median(withObs)).toLocaleString('en')} | ${ratio.toFixed(2)} |`);
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
  const count: Record<string, { ir: number; lines: number; writes: number }> = {};
  for (const c of ['baseline', 'observers']) {
    const r = spawnSync('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--callgrind-out-file=/dev/null',
      process.execPath, '--import', 'tsx', self, '--contender', c, '--lines', String(lines), '--passes', String(passes), '--warmup', String(warmup), ...childFlags()], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const ir = /Collected : (\d+)/.exec(r.stderr ?? '');
    const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !ir || !out.startsWith('{')) throw new Error(`callgrind run of ${c} failed (${r.status}): ${r.error ?? ''}\n${r.stderr?.slice(-2000)}`);
    const parsed = JSON.parse(out) as { lines: number; writes: number };
    count[c] = { ir: Number(ir[1]), ...parsed };
  }
  const b = count.baseline!, o = count.observers!;
  console.log(`callgrind, ${lines}-line corpus, ${passes} measured passes after ${warmup} warm-up passes; the observers wrote ${o.writes} times per pass`);
  console.log('| contender | instructions/line | ratio |');
  console.log('|---|---:|---:|');
  console.log(`| parse + match (baseline) | ${Math.round(b.ir / b.lines).toLocaleString('en')} | 1.00 |`);
  console.log(`| parse + match + observers | ${Math.round(o.ir / o.lines).toLocaleString('en')} | ${(b.ir / o.ir).toFixed(3)} |`);
  console.log(`target ≥ 0.90 × parse + match: ${b.ir / o.ir >= 0.9 ? 'met' : 'NOT met'}`);
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
