/**
 * Where a drain request's CPU goes: `mallet serve` in its own process under `node --cpu-prof`,
 * driven by the drain load generator, then the profile's self time grouped by who spent it
 * (ioredis, Fastify, Node's HTTP and sockets, GC, mallet's own files). Natives (string writes,
 * socket writes, RegExp) are charged to the nearest JavaScript caller that has a file; then the
 * same samples by stage, charged to the nearest caller outside Node (profileSummary.ts stageOf).
 *
 *   node --import tsx bench/profile.ts [SECONDS] [CONNECTIONS]   (BENCH_PROFILE_DIR keeps the .cpuprofile)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { startServe } from './support/serveProcess.js';
import { summariseByStage, summariseProfile, type CpuProfile } from './support/profileSummary.js';

const here = dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 32);
const PASSWORD = 'bench-drain-password';
const dir = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'mallet-profile-'));

const fakeApi = Fastify();
fakeApi.delete('/*', async (_req, reply) => reply.code(202).header('RateLimit-Remaining', '4000').send({}));
const fakeApiUrl = await fakeApi.listen({ port: 0, host: '127.0.0.1' });
const serve = await startServe({
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', password: PASSWORD,
  nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], env: { HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token' },
});

function load(durationS: number): Promise<{ rps: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'support/drainLoad.ts'), serve.url, String(durationS)], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

await load(2); // JIT warm-up (in the profile too, but short)
const cpu0 = serve.cpuUs();
const r = await load(seconds);
const cpu = serve.cpuUs() - cpu0;
await serve.stop();
await fakeApi.close();
// One file per thread (CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile): the main thread's is
// thread 0; `mallet serve` runs the action worker in a thread of its own, summarised apart.
const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
const file = files.filter((f) => f.split('.')[4] === '0').at(-1) ?? files.at(-1);
if (!file) throw new Error(`no .cpuprofile in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
console.log(`${connections} connections, ${seconds} s: ${r.rps.toFixed(0)} req/s, server CPU ${(cpu / (r.rps * seconds)).toFixed(0)} µs per request (${r.non2xx} non-2xx, ${r.errors} errors)`);
console.log(`profile: ${join(dir, file)} (open in Chrome DevTools or speedscope for the flame graph)\n`);
console.log(summariseProfile(profile));
console.log('\nthe same samples by stage, each charged to its nearest caller of ours (socket writes to the writer, a hash to the look-up):\n');
console.log(summariseByStage(profile));
for (const other of files.filter((f) => f !== file && f.split('.')[3] === file.split('.')[3])) {
  const p = JSON.parse(readFileSync(join(dir, other), 'utf8')) as CpuProfile;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) if (p.nodes.find((n) => n.id === p.samples[i])?.callFrame.functionName !== '(idle)') busy += p.timeDeltas[i] ?? 0;
  console.log(`\nanother thread (${other}, the action worker in mallet serve): busy ${(busy / 1e6).toFixed(2)} s over the whole profile (its start-up and the warm-up included)`);
}
if (process.argv[4]) console.log(`\n${process.argv[4]}`);
process.exit(0);
