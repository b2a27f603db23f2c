/**
 * Socket writes per drain body: `mallet serve` (1 process) under the drain load generator with
 * `strace -f` on its write/writev calls, split by what was written (Redis commands, HTTP replies),
 * and the server's CPU per request from /proc. strace slows the server, so read the counts, not
 * the req/s. Uses a private redis-server when REDIS_URL is not set (started on a free port, stopped
 * at the end), so its INFO commandstats count this run only.
 *
 *   node --import tsx bench/support/drainWrites.ts [SECONDS] [CONNECTIONS] [BUILT_ROOT]
 *
 * BUILT_ROOT: another built checkout to run instead of this one (see drainAB.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort, startServe } from './serveProcess.js';

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.argv[2] ?? 6);
const connections = Number(process.argv[3] ?? 32);
const PASSWORD = 'bench-drain-password';

let redisUrl = process.env.REDIS_URL;
let privateRedis: ReturnType<typeof spawn> | undefined;
if (!redisUrl) {
  const port = await freePort();
  privateRedis = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
  for (;;) {
    const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try { await probe.connect(); probe.disconnect(); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
}
process.once('exit', () => privateRedis?.kill('SIGTERM'));

const serve = await startServe({ redisUrl, password: PASSWORD, ...(process.argv[4] ? { root: process.argv[4] } : {}) });

function load(durationS: number): Promise<{ rps: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), serve.url, String(durationS)], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

await load(2); // warm-up, not counted
const redis = new Redis(redisUrl);
const stats = async () => {
  const info = await redis.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return { evalsha: calls('evalsha') + calls('eval'), all: [...info.matchAll(/calls=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0) };
};
const s0 = privateRedis ? await stats() : undefined;
const dir = mkdtempSync(join(tmpdir(), 'mallet-writes-'));
const trace = join(dir, 'trace');
const strace = spawn('strace', ['-f', '-qq', '-e', 'trace=write,writev', '-s', '12', '-o', trace, '-p', String(serve.pid)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const cpu0 = serve.cpuUs();
const r = await load(seconds);
const cpu = serve.cpuUs() - cpu0;
strace.kill('SIGINT');
await new Promise((r) => strace.once('exit', r));
const s1 = privateRedis ? await stats() : undefined;
await serve.stop();

let redisWrites = 0;
let httpWrites = 0;
let other = 0;
for (const line of readFileSync(trace, 'utf8').split('\n')) {
  if (!/ write(v)?\(/.test(line)) continue;
  if (/"\*\d/.test(line)) redisWrites++;
  else if (/"HTTP\//.test(line)) httpWrites++;
  else other++;
}
const bodies = r.rps * seconds;
console.log(`${connections} connections, ${seconds} s under strace: ${bodies.toFixed(0)} bodies (${r.non2xx} non-2xx, ${r.errors} errors), server CPU ${(cpu / bodies).toFixed(0)} µs per request (strace inflates it)`);
console.log(`socket writes: Redis ${redisWrites} (${(redisWrites / bodies).toFixed(3)} per body), HTTP replies ${httpWrites} (${(httpWrites / bodies).toFixed(3)} per body), other ${other}`);
if (process.env.BENCH_COMMANDSTATS) console.log(await redis.info('commandstats'));
if (s0 && s1) console.log(`Redis (private, this run): ${(s1.evalsha - s0.evalsha)} EVAL/EVALSHA (${((s1.evalsha - s0.evalsha) / bodies).toFixed(3)} per body), ${s1.all - s0.all} commands in all (includes the worker's and this script's)`);
redis.disconnect();
process.exit(0);
