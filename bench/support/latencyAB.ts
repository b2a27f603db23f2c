/**
 * Trigger latency of two or more `mallet serve` variants in one run, in alternating blocks, so a
 * loaded machine's load falls on each alike: per block, background drain load at one fixed rate
 * on the variant measured (the other stands idle), probes as in bench/drain.bench.ts
 * (latencyProbe.ts), and what the service process went through (serviceHealth.ts). A private
 * redis-server, so other work on the shared one does not enter the figures.
 *
 *   node --import tsx bench/support/latencyAB.ts RATE BLOCKS PROBES_PER_BLOCK NAME=ROOT[@NODE_FLAG,...] ...
 *
 * ROOT is a built checkout (`.` is this one); the flags are passed to that serve's node, e.g.
 * `big=.@--max-semi-space-size=64`. RATE 0: half the first variant's maximum (one 6 s round at 32 connections).
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { startPrivateRedis, probeStopKey, startServe, type ServeProcess } from './serveProcess.js';
import { percentile, runProbes, type ProbeSpan } from './latencyProbe.js';
import { watchHealth } from './serviceHealth.js';

const here = dirname(fileURLToPath(import.meta.url));
const [rateArg, blocksArg, probesArg, ...variants] = process.argv.slice(2);
const PASSWORD = 'bench-drain-password';
const auth = 'Basic ' + Buffer.from(`mallet:${PASSWORD}`).toString('base64');
const blocks = Number(blocksArg ?? 4);
const perBlock = Number(probesArg ?? 50);
if (variants.length === 0) throw new Error('usage: latencyAB.ts RATE BLOCKS PROBES_PER_BLOCK NAME=ROOT[@FLAGS] ...');

const redisUrl = await startPrivateRedis();
const redis = new Redis(redisUrl);

function load(url: string, durationS: number, connections: number, rate?: number): Promise<{ rps: number; non2xx: number; errors: number }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), url, String(durationS), ...(rate ? [String(rate)] : [])], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => { try { res(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { rej(new Error(`load generator exited ${code}: ${out}`)); } });
  });
}

const servers: Array<{ name: string; serve: ServeProcess; spans: ProbeSpan[]; health: string[]; achieved: number[]; missed: number }> = [];
for (const v of variants) {
  const name = v.slice(0, v.indexOf('='));
  const spec = v.slice(v.indexOf('=') + 1);
  const [root, flags] = spec.split('@') as [string, string | undefined];
  const serve = await startServe({ redisUrl, password: PASSWORD, root: resolve(root), nodeArgs: flags ? flags.split(',') : [] });
  servers.push({ name, serve, spans: [], health: [], achieved: [], missed: 0 });
}
for (const s of servers) await load(s.serve.url, 3, 8);
let rate = Number(rateArg);
if (!rate) rate = Math.floor((await load(servers[0]!.serve.url, 6, 32)).rps / 2);
console.log(`rate ${rate} req/s; ${blocks} blocks × ${perBlock} probes per variant, alternating; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const COLD = 5;
const probeGapMs = 100;
let counter = 0;
for (let b = 0; b < blocks; b++) {
  const order = b % 2 === 0 ? servers : [...servers].reverse();
  for (const s of order) {
    const n = perBlock + (b === 0 ? COLD : 0);
    const background = load(s.serve.url, Math.ceil((n * (probeGapMs + 60)) / 1000) + 4, 32, rate);
    await new Promise((r) => setTimeout(r, 1000));
    const health = await watchHealth(s.serve.url, s.serve.pid);
    // A fresh app per block: probe dynos never repeat (no cooldown shared).
    const run = await runProbes({
      url: s.serve.url, auth, redis, redisUrl, prefix: s.serve.prefix,
      stopKey: (dyno) => probeStopKey(s.serve.prefix).replace('{{target}}', dyno), app: `bench-probe-${counter++}`, rule: 'latency-probe',
      count: n, gapMs: probeGapMs, timeoutMs: 30_000,
    });
    s.health.push(await health.end());
    s.achieved.push((await background).rps);
    s.spans.push(...run.spans.filter((p) => b > 0 || p.n > COLD));
    s.missed += run.misses.length;
    console.log(`block ${b} ${s.name}: load average ${loadavg()[0]!.toFixed(2)}; ${s.health.at(-1)}`);
  }
}

const stat = (xs: number[]) => { const s = xs.filter((x) => !Number.isNaN(x)).sort((a, c) => a - c); return `p50 ${percentile(s, 50)} p90 ${percentile(s, 90)} **p99 ${percentile(s, 99)}** max ${s.at(-1)}`; };
const pp = (xs: number[]) => { const s = xs.filter((x) => !Number.isNaN(x)).sort((a, c) => a - c); return `${percentile(s, 50)}/${percentile(s, 99)}`; };
console.log(`\nload average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
for (const s of servers) {
  const sp = s.spans;
  console.log(`${s.name}: ${sp.length} probes at ${rate} req/s (achieved ${s.achieved.map((x) => x.toFixed(0)).join(', ')}), ${s.missed} missed; key written ${stat(sp.map((p) => p.keyWritten))} ms`);
  console.log(`  each stage alone p50/p99: judged ${pp(sp.map((p) => p.judged))}, admitted ${pp(sp.map((p) => p.enqueued - p.judged))}, taken ${pp(sp.map((p) => p.taken - p.enqueued))}, key ${pp(sp.map((p) => p.keyWritten - p.taken))}`);
  console.log(`  cumulative p50/p99: judged ${pp(sp.map((p) => p.judged))}, admitted ${pp(sp.map((p) => p.enqueued))}, taken ${pp(sp.map((p) => p.taken))}, key ${pp(sp.map((p) => p.keyWritten))}`);
  // Where the slowest probes' time went, stage by stage (ms), and how busy the worker was.
  const worst = [...sp].sort((a, c) => c.keyWritten - a.keyWritten).slice(0, 5);
  // A block's background starts 1 s before its first probe: are the slow ones its start?
  const p90 = percentile([...sp.map((p) => p.keyWritten)].sort((a, c) => a - c), 90);
  const slow = sp.filter((p) => p.keyWritten > p90);
  const early = slow.filter((p) => p.n <= 15).length;
  const later = sp.filter((p) => p.n > 15).map((p) => p.keyWritten).sort((a, c) => a - c);
  console.log(`  probes over p90 (${p90} ms): ${early} of ${slow.length} among each block's first 15; key written over probes 16+ only: p50 ${percentile(later, 50)} p99 ${percentile(later, 99)} (${later.length} probes)`);
  for (const p of worst) console.log(`  slow probe ${p.n}: ${p.keyWritten} ms = judged ${p.judged} + admitted ${p.enqueued - p.judged} + taken ${p.taken - p.enqueued} + key ${p.keyWritten - p.taken}; woke ${p.woke}; ${p.activeBefore} jobs active`);
}
for (const s of servers) await s.serve.stop();
redis.disconnect();
process.exit(0);
