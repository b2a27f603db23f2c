/**
 * `npm run bench:soak`: mallet under sustained drain load with the example rules for
 * BENCH_SOAK_MINUTES (default 10), then whole-path throughput of one replica vs two behind a local
 * round-robin proxy, in the same run.
 *
 * Soak: the service runs in this process (the load generator in its own), on a private
 * redis-server, so the RSS, the heap after a GC and Redis's used_memory are mallet's alone;
 * sampled at minute 1, 5 and 10 (and every minute, printed). Targets (issue): RSS growth minute
 * 1 → 10 ≤ 5 %, peak RSS ≤ 200 MB.
 *
 * Throughput: `mallet serve` replicas as processes on the same Redis, the same proxy in front of
 * one and then of two, autocannon in its own process; req/s, ratio, and CPU per request (every
 * replica's user+system time over the requests answered).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createConnection, createServer as createNetServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { startService } from '../src/server/service.js';
import { ensureCorpus } from './corpus.js';

const here = dirname(fileURLToPath(import.meta.url));
const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
const RATE = Number(process.env.BENCH_SOAK_RATE ?? 100);
const THROUGHPUT_S = Number(process.env.BENCH_THROUGHPUT_S ?? 15);
const PASSWORD = `soak-${process.pid}-${Date.now().toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
  });
}
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
function redisInfo(port: number, field: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let out = '';
    socket.once('connect', () => socket.write('INFO memory\r\nINFO keyspace\r\nQUIT\r\n'));
    socket.on('data', (d) => { out += d; });
    socket.on('close', () => resolve(Number(new RegExp(`${field}[:=](\\d+)`).exec(out)?.[1] ?? 0)));
  });
}

interface LoadResult { rps: number; non2xx: number; errors: number; linesPerBody: number }
function load(url: string, durationS: number, rate?: number, connections = 8): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', join(here, 'support/drainLoad.ts'), url, String(durationS), ...(rate ? [String(rate)] : [])];
    const child = spawn(process.execPath, args, { env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as LoadResult); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

// A private Redis: its memory is mallet's alone, and nothing else's keys are touched.
const redisDir = mkdtempSync(join(tmpdir(), 'mallet-soak-redis-'));
const redisPort = await freePort();
const redisChild = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
for (let i = 0; i < 100 && !(await ping(redisPort)); i++) await sleep(50);
const redisUrl = `redis://127.0.0.1:${redisPort}`;

// The example rules as they are (limits included), apps list dropped so the bench app is accepted.
const dir = mkdtempSync(join(tmpdir(), 'mallet-soak-'));
const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { apps?: unknown };
delete rules.apps;
const rulesPath = join(dir, 'rules.yml');
writeFileSync(rulesPath, stringify(rules));
await ensureCorpus(100_000);

const env = {
  REDIS_URL: redisUrl, HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_RULES: rulesPath,
  MALLET_KEY_PREFIX: 'soak', MALLET_QUEUE_PREFIX: 'soak-q', LOG_LEVEL: 'silent',
};

console.log(`soak: ${MINUTES} min at ${RATE} bodies/s (corpus bodies, ~100 lines each), example rules, private Redis`);
const service = await startService({ config: loadConfig({ ...env, PORT: '0' }), logger: pino({ level: 'silent' }) });
const gc = (globalThis as { gc?: () => void }).gc;
const samples: Array<{ minute: number; rssMiB: number; heapMiB: number; redisMiB: number; redisKeys: number }> = [];
let peakRss = 0;
const peakTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 1000);
const soak = load(service.url!, MINUTES * 60, RATE);
const t0 = Date.now();
for (let minute = 1; minute <= MINUTES; minute++) {
  await sleep(t0 + minute * 60_000 - Date.now());
  const rss = process.memoryUsage().rss;
  gc?.();
  const s = { minute, rssMiB: rss / 2 ** 20, heapMiB: process.memoryUsage().heapUsed / 2 ** 20, redisMiB: (await redisInfo(redisPort, 'used_memory')) / 2 ** 20, redisKeys: await redisInfo(redisPort, 'keys') };
  samples.push(s);
  console.log(`  minute ${String(minute).padStart(2)}: RSS ${s.rssMiB.toFixed(1)} MiB, heap after GC ${s.heapMiB.toFixed(1)} MiB, Redis ${s.redisMiB.toFixed(1)} MiB (${s.redisKeys} keys)`);
}
const soakResult = await soak;
clearInterval(peakTimer);
await service.close();
const at = (m: number) => samples.find((s) => s.minute === m) ?? samples.at(-1)!;
const first = at(1);
const last = samples.at(-1)!;
console.log(`\n| minute | RSS MiB | heap after GC MiB | Redis used_memory MiB | Redis keys |\n|---:|---:|---:|---:|---:|`);
for (const m of [...new Set([1, 5, 10, MINUTES].filter((m) => m <= MINUTES))]) {
  const s = at(m);
  console.log(`| ${s.minute} | ${s.rssMiB.toFixed(1)} | ${s.heapMiB.toFixed(1)} | ${s.redisMiB.toFixed(1)} | ${s.redisKeys} |`);
}
console.log(`\nload: ${soakResult.rps.toFixed(0)} bodies/s average, ${soakResult.non2xx} non-2xx, ${soakResult.errors} errors`);
console.log(`RSS growth minute 1 → ${last.minute}: ${(((last.rssMiB - first.rssMiB) / first.rssMiB) * 100).toFixed(1)} % (target ≤ 5 %); peak RSS ${(peakRss / 2 ** 20).toFixed(1)} MiB (target ≤ 200 MB)`);

// Throughput: one replica vs two behind the same round-robin proxy.
function spawnReplica(port: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(here, '../src/cli/main.ts'), 'serve'], {
    env: { ...process.env, ...env, PORT: String(port), MALLET_KEY_PREFIX: 'tput', MALLET_QUEUE_PREFIX: 'tput-q' }, stdio: 'ignore',
  });
}
async function ready(port: number) {
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return; } catch { /* starting */ }
    await sleep(100);
  }
  throw new Error(`replica on ${port} did not get ready`);
}
function cpuMs(pid: number): number {
  // utime + stime in clock ticks (fields 14, 15 of /proc/PID/stat); 100 ticks per second on Linux.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
const ports = [await freePort(), await freePort()];
const replicas = ports.map(spawnReplica);
await Promise.all(ports.map(ready));
let backends: number[] = [];
let rr = 0;
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const proxy = createServer((req, res) => {
  const port = backends[rr++ % backends.length]!;
  const up = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => { res.writeHead(502).end(); });
  req.pipe(up);
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
const measure = async (n: number) => {
  backends = ports.slice(0, n);
  await load(proxyUrl, 3, undefined, 16); // warm-up
  const before = replicas.slice(0, n).map((c) => cpuMs(c.pid!));
  const r = await load(proxyUrl, THROUGHPUT_S, undefined, 16);
  const cpu = replicas.slice(0, n).reduce((sum, c, i) => sum + cpuMs(c.pid!) - before[i]!, 0);
  return { ...r, cpuUsPerRequest: (cpu * 1000) / (r.rps * THROUGHPUT_S) };
};
const one = await measure(1);
const two = await measure(2);
console.log(`\nthroughput (${THROUGHPUT_S} s, 16 connections, ${cpus().length} cores shared with Redis, the proxy and the load generator):`);
console.log(`| replicas | req/s | lines/s | replica CPU per request | non-2xx |\n|---:|---:|---:|---:|---:|`);
for (const [n, r] of [[1, one], [2, two]] as const) {
  console.log(`| ${n} | ${r.rps.toFixed(0)} | ${(r.rps * r.linesPerBody).toFixed(0)} | ${r.cpuUsPerRequest.toFixed(0)} µs | ${r.non2xx + r.errors} |`);
}
console.log(`two vs one: ${(two.rps / one.rps).toFixed(2)}×`);

proxy.close();
agent.destroy();
for (const c of replicas) c.kill('SIGTERM');
await Promise.all(replicas.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(undefined)))));
redisChild.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
setTimeout(() => rmSync(redisDir, { recursive: true, force: true }), 500).unref();
