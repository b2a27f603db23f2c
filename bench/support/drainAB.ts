/**
 * Two or more builds of mallet side by side under the same drain load, alternating, on a private
 * redis-server: per build and connection level, req/s, the server's CPU per request, and its
 * socket calls per request (write and read system calls of the whole process, from
 * /proc/PID/io: the HTTP reply is one write per request in every build, so a difference is
 * Redis's), plus the bare Fastify route's CPU per request in the same rounds. For a loaded
 * machine: CPU per request and system calls per request move much less than req/s.
 *
 *   node --import tsx bench/support/drainAB.ts SECONDS ROUNDS CONNECTIONS NAME=BUILT_ROOT [NAME=BUILT_ROOT ...]
 *
 * A BUILT_ROOT is a checkout after `npm run build` (bin/, dist/, node_modules/); `.` is this one.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateRedis, startServe, treeCpuUs, type ServeProcess } from './serveProcess.js';

const here = dirname(fileURLToPath(import.meta.url));
const [secondsArg, roundsArg, connectionsArg, ...builds] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 6);
const rounds = Number(roundsArg ?? 3);
const levels = (connectionsArg ?? '8,32').split(',').map(Number);
const PASSWORD = 'bench-drain-password';
if (builds.length === 0) throw new Error('usage: drainAB.ts SECONDS ROUNDS CONNECTIONS NAME=ROOT [NAME=ROOT ...]');

const redisUrl = await startPrivateRedis();

const bare = spawn(process.execPath, ['--import', 'tsx', join(here, 'bareServer.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
const bareUrl = await new Promise<string>((r) => { bare.stdout!.once('data', (d) => r(String(d).trim())); });
process.once('exit', () => bare.kill('SIGTERM'));

const servers: Array<{ name: string; serve: ServeProcess }> = [];
for (const b of builds) {
  // NAME=ROOT[@NODE_FLAG,...]: the flags go to that serve's node (e.g. `big=.@--max-semi-space-size=64`).
  const name = b.slice(0, b.indexOf('='));
  const [root, flags] = b.slice(b.indexOf('=') + 1).split('@') as [string, string | undefined];
  servers.push({ name, serve: await startServe({ redisUrl, password: PASSWORD, root: resolve(root), nodeArgs: flags ? flags.split(',') : [] }) });
}

function load(url: string, durationS: number, connections: number): Promise<{ rps: number; non2xx: number; errors: number }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), url, String(durationS)], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => { try { res(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { rej(new Error(`load generator exited ${code}: ${out}`)); } });
  });
}

/** Write and read system calls of a process (all its threads). */
function syscalls(pid: number): { w: number; r: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { w: Number(/syscw: (\d+)/.exec(io)![1]), r: Number(/syscr: (\d+)/.exec(io)![1]) };
}

interface Row { rps: number; cpu: number; w: number; r: number; gcs: number; gcMs: number }

/** The serve's young- and old-generation pauses so far (its own /metrics): count and seconds. */
async function gcTotals(url: string): Promise<{ n: number; s: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  let s = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('nodejs_gc_duration_seconds_count')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
    else if (line.startsWith('nodejs_gc_duration_seconds_sum')) s += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return { n, s };
}
const rows = new Map<string, Row[]>();
const put = (k: string, row: Row) => { const l = rows.get(k) ?? []; l.push(row); rows.set(k, l); };
async function measure(key: string, url: string, pid: number, connections: number): Promise<void> {
  const metered = !key.startsWith('bare@');
  const g0 = metered ? await gcTotals(url) : { n: 0, s: 0 };
  const c0 = treeCpuUs(pid);
  const s0 = syscalls(pid);
  const r = await load(url, seconds, connections);
  const n = r.rps * seconds;
  const s1 = syscalls(pid);
  const cpu = (treeCpuUs(pid) - c0) / n;
  const g1 = metered ? await gcTotals(url) : { n: 0, s: 0 };
  put(key, { rps: r.rps, cpu, w: (s1.w - s0.w) / n, r: (s1.r - s0.r) / n, gcs: ((g1.n - g0.n) * 1000) / n, gcMs: ((g1.s - g0.s) * 1e6) / n });
  if (r.non2xx + r.errors > 0) console.log(`(${key}: ${r.non2xx} non-2xx, ${r.errors} errors)`);
}

for (const s of servers) await load(s.serve.url, 2, 8);
await load(bareUrl, 2, 8);
for (let round = 0; round < rounds; round++) {
  for (const connections of levels) {
    // Alternate the order each round, so neither build always runs first.
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    await measure(`bare@${connections}`, bareUrl, bare.pid!, connections);
    for (const s of order) await measure(`${s.name}@${connections}`, s.serve.url, s.serve.pid, connections);
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
console.log(`${seconds} s × ${rounds} rounds per build and level, alternating; medians; private redis-server\n`);
console.log('| build | connections | req/s | CPU µs/req | write syscalls/req | read syscalls/req | GC pauses per 1000 req | GC pause µs/req (wall) | rounds (CPU µs/req) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const connections of levels) {
  for (const name of ['bare', ...servers.map((s) => s.name)]) {
    const l = rows.get(`${name}@${connections}`)!;
    console.log(`| ${name} | ${connections} | ${median(l.map((x) => x.rps)).toFixed(0)} | ${median(l.map((x) => x.cpu)).toFixed(0)} | ${median(l.map((x) => x.w)).toFixed(2)} | ${median(l.map((x) => x.r)).toFixed(2)} | ${median(l.map((x) => x.gcs)).toFixed(1)} | ${median(l.map((x) => x.gcMs)).toFixed(0)} | ${l.map((x) => x.cpu.toFixed(0)).join(', ')} |`);
  }
}
// The young generation each build ended with (V8 grows it from its initial size as objects survive).
for (const s of servers) {
  const text = await (await fetch(`${s.serve.url}/metrics`)).text();
  const size = /nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/.exec(text)?.[1];
  console.log(`${s.name}: new space ${(Number(size) / 2 ** 20).toFixed(1)} MiB at the end`);
}
for (const s of servers) await s.serve.stop();
process.exit(0);
