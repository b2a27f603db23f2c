/**
 * A drain body's Node cost from the parse to its answer, without HTTP, counted in instructions
 * (a loaded machine changes time, not instructions): corpus bodies parsed with the service's
 * prefilter (`Pipeline.wants`, as the drain route parses them) and ingested by the pipeline with
 * the example rules, the dyno observer and the frame de-dup, wired as service.ts wires them, on a
 * real Redis (its own process, not counted), one body after another. Under
 * `valgrind --tool=callgrind`, instructions are counted only over the measured passes, after the
 * warm-up (callgrind_control), so start-up and the JIT's first compiles are left out.
 *
 *   node --import tsx bench/support/bodyCost.ts REDIS_URL [--bodies 200] [--passes 2] [--warmup 6] [--callgrind] [--alloc [--sites]]
 *
 * `--callgrind` runs itself under valgrind and prints instructions per body; `--alloc` prints the
 * JS bytes allocated per body (the young generation made larger than a pass allocates; a pass
 * during which a collection ran is refused by allocation.ts), with `--sites` also by allocating
 * function (V8's sampling heap profiler). Without either: CPU µs per body.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ensureCorpus } from '../corpus.js';
import { loadRules } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { BodyPrefilter } from '../../src/ingest/bodyPrefilter.js';
import { allocationFlags, measureAllocation } from './allocation.js';
import { cleanupPrefix } from '../../test/support/redis.js';

const argv = process.argv.slice(2);
const redisUrl = argv[0] ?? 'redis://127.0.0.1:6379';
const numberArg = (name: string, d: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const bodies = numberArg('bodies', 200);
const passes = numberArg('passes', 2);
const warmup = numberArg('warmup', 6);
const self = fileURLToPath(import.meta.url);

if (argv.includes('--callgrind') || (argv.includes('--alloc') && !argv.includes('--child'))) {
  const alloc = argv.includes('--alloc');
  const rest = argv.filter((a) => a !== '--callgrind');
  // The main thread's instructions only (the JIT's background compiles vary from run to run), and
  // a young generation larger than the passes allocate: run to run within ~0.1 %.
  const node = [...(alloc ? allocationFlags('bytes') : ['--single-threaded-gc', '--max-semi-space-size=256']), '--import', 'tsx', self, ...rest, '--child'];
  const outDir = mkdtempSync(join(tmpdir(), 'mallet-bodycost-'));
  const r = alloc
    ? spawnSync(process.execPath, node, { encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(outDir, 'cg')}`, process.execPath, ...node], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !out.startsWith('{')) throw new Error(`bodyCost child failed (${r.status}):\n${r.stderr?.slice(-3000)}`);
  const result = JSON.parse(out) as Record<string, unknown>;
  if (!alloc) {
    const m = /Collected : (\d+)/.exec(r.stderr ?? '');
    const main = /^totals: (\d+)/m.exec(readFileSync(join(outDir, 'cg-01'), 'utf8'));
    if (!m || !main) throw new Error(`no callgrind total:\n${r.stderr?.slice(-2000)}`);
    result.instructionsPerBody = Math.round(Number(main[1]) / (bodies * passes));
    result.allThreadsPerBody = Math.round(Number(m[1]) / (bodies * passes));
  }
  console.log(JSON.stringify(result));
  rmSync(outDir, { recursive: true, force: true });
  process.exit(0);
}

const redis = new Redis(redisUrl);
const corpus = await ensureCorpus(100_000);
const bytes = readFileSync(corpus.file);
const loaded = await loadRules(new URL('../../config/rules.example.yml', import.meta.url).pathname, process.env, { allowUnsetEnv: true });
if (!loaded.ok) throw new Error('example rules do not load');
const prefix = `mallet-bodycost-${process.pid}`;
const keys = redisKeys(prefix);
const metrics = createMetrics(undefined, { defaults: false });
const logger = pino({ level: 'silent' });
const life = new RedisLifeStore(redis, keys);
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet, life });
const pipeline = new Pipeline({ redis, keys, engine, sink: { submit: async (f) => f.map(() => 'enqueued' as const) }, observers: [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)], metrics, logger });
const prefilter = new BodyPrefilter(pipeline.wants);
const run = Date.now().toString(16);
let n = 0;
let firings = 0;
async function pass(): Promise<void> {
  for (let i = 0; i < bodies; i++) {
    const b = corpus.index[(n++) % corpus.index.length]!;
    const body = bytes.subarray(b.offset, b.offset + b.length);
    const r = await pipeline.ingest({ app: 'cost-app', drainToken: 'd.1', frameId: `${run}-${n}`, dedupe: true, receivedAt: Date.now(), ...parseLogplexBody(body, prefilter) });
    firings += r.firings;
  }
}
const result: Record<string, unknown> = { bodies, passes, warmup };
if (argv.includes('--alloc')) {
  const a = await measureAllocation('bytes', pass, { warmup, passes, lines: bodies });
  result.bytesPerBody = a.bytesPerPass!.map((x) => Math.round(x / bodies));
  if (argv.includes('--sites')) {
    const s = await measureAllocation('sites', pass, { warmup: 0, passes, lines: bodies });
    result.sitesPerBody = s.project!.slice(0, 25).map(([k, v]) => `${Math.round(v / bodies)} ${k}`);
    result.selfPerBody = s.self!.slice(0, 25).map(([k, v]) => `${Math.round(v / bodies)} ${k}`);
  }
} else {
  for (let k = 0; k < warmup; k++) await pass();
  const ctl = (on: boolean) => { if (argv.includes('--child')) execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' }); };
  const t0 = process.cpuUsage();
  ctl(true);
  for (let k = 0; k < passes; k++) await pass();
  ctl(false);
  const t = process.cpuUsage(t0);
  result.cpuUsPerBody = Math.round((t.user + t.system) / (bodies * passes));
}
result.firings = firings;
await cleanupPrefix(redis, prefix);
redis.disconnect();
console.log(JSON.stringify(result));
