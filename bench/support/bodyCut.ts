/**
 * Where a drain body's CPU goes after the rules have matched: the whole service in this process
 * (startService: the example rules, the dyno observer, the in-process worker, pino silent), with
 * the body script call cut off at one point, under the drain load generator (its own process,
 * drainLoad.ts). Each mode adds one stage to the one before:
 *
 * - `prepare`: everything up to the script call (events, matching, the rules' votes, the
 *   observers' parts), then answered as a duplicate (nothing encoded, nothing sent, nothing counted);
 * - `encode`: plus the call's arguments (encodeBody), still not sent;
 * - `send`: plus the call sent through BodyFlush and ioredis to a script that only returns
 *   `{'duplicate'}` (ioredis encoding, the socket write, Redis reading the arguments, the reply);
 * - `full`: the real script and everything after it (the replies read, firings stored, counts).
 *
 * Prints req/s, this process's CPU per request (/proc via process.cpuUsage), the bytes and write
 * calls it made per request (/proc/self/io), Redis commands per request (INFO commandstats of the
 * Redis given: use a private one) and, with `--alloc`, the JS bytes allocated per request (V8's
 * sampling heap profiler, collected objects kept) and the top allocating functions.
 *
 *   node --import tsx bench/support/bodyCut.ts MODE SECONDS CONNECTIONS REDIS_URL [--alloc] [--cpu-prof-out FILE]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/server/service.js';
import { BodyScript, encodeBody, type BodyReply } from '../../src/server/bodyScript.js';
import type { BodyPart } from '../../src/bodyPart.js';
import { BodyFlush } from '../../src/server/bodyFlush.js';
import { benchRules } from './serveProcess.js';

const here = dirname(fileURLToPath(import.meta.url));
const [mode = 'full', secondsArg = '6', connectionsArg = '32', redisUrl = 'redis://127.0.0.1:6379', ...flags] = process.argv.slice(2);
const seconds = Number(secondsArg);
const connections = Number(connectionsArg);
const alloc = flags.includes('--alloc');
const profOut = flags.includes('--cpu-prof-out') ? flags[flags.indexOf('--cpu-prof-out') + 1] : undefined;
const PASSWORD = 'bench-drain-password';
if (!['prepare', 'encode', 'send', 'full'].includes(mode)) throw new Error(`bodyCut: unknown mode ${mode}`);

/** `--shape`: what the calls hold (parts by name, their keys and arguments, the encoded call), adds CPU: a run of its own. */
const shape = flags.includes('--shape');
const shapes = { calls: 0, parts: new Map<string, number>(), keys: 0, args: 0, callArgs: 0, callBytes: 0 };
if (shape) {
  const original = BodyScript.prototype.run;
  BodyScript.prototype.run = function (framesKey, frameId, now, mark, parts) {
    shapes.calls++;
    for (const p of parts) { shapes.parts.set(p.name, (shapes.parts.get(p.name) ?? 0) + 1); shapes.keys += p.keys.length; shapes.args += p.args.length; }
    const call = encodeBody(framesKey, frameId, now, mark, parts);
    shapes.callArgs += call.length;
    for (const a of call) shapes.callBytes += Buffer.byteLength(String(a));
    return original.call(this, framesKey, frameId, now, mark, parts);
  };
}
const DUPLICATE: BodyReply = { status: 'duplicate', replies: [] };
let noop: BodyFlush | undefined;
if (mode !== 'full' && !shape) {
  // Replaced on the prototype before the service makes its BodyScript.
  BodyScript.prototype.run = async (framesKey: string, frameId: string, now: number, mark: boolean, parts: readonly BodyPart[]): Promise<BodyReply> => {
    if (mode === 'prepare') return DUPLICATE;
    const call = encodeBody(framesKey, frameId, now, mark, parts);
    if (mode === 'send') await noop!.call(framesKey, call);
    return DUPLICATE;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'mallet-bodycut-'));
const fakeApi = Fastify();
fakeApi.delete('/*', async (_req, reply) => reply.code(202).header('RateLimit-Remaining', '4000').send({}));
const fakeApiUrl = await fakeApi.listen({ port: 0, host: '127.0.0.1' });
const prefix = `mallet-bodycut-${process.pid}`;
const service = await startService({
  config: loadConfig({
    REDIS_URL: redisUrl, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_RULES: benchRules(dir),
    MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token', LOG_LEVEL: 'warn',
  }),
  logger: pino({ level: 'silent' }),
});
if (mode === 'send') {
  service.redis.defineCommand('malletBodyCut', { lua: "return {'duplicate'}" });
  noop = new BodyFlush(service.redis, 'malletBodyCut');
}

function load(durationS: number): Promise<{ rps: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), service.url!, String(durationS)], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(connections) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

/** This process's writes, summed over its threads: /proc/self/io also holds the reaped load generator's. */
function io(): { wchar: number; syscw: number } {
  let wchar = 0;
  let syscw = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    const t = readFileSync(`/proc/self/task/${tid}/io`, 'utf8');
    wchar += Number(/wchar: (\d+)/.exec(t)![1]);
    syscw += Number(/syscw: (\d+)/.exec(t)![1]);
  }
  return { wchar, syscw };
}

/** Calls of each command on the Redis the service uses (a private one: every client counts). */
async function commandCalls(probe: Redis): Promise<Map<string, number>> {
  const info = await probe.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

const probe = new Redis(redisUrl);
await load(3); // JIT warm-up
const session = new Session();
session.connect();
if (alloc) await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
if (profOut) { await session.post('Profiler.enable'); await session.post('Profiler.start'); }
const cmd0 = await commandCalls(probe);
const io0 = io();
const cpu0 = process.cpuUsage();
const r = await load(seconds);
const used = process.cpuUsage(cpu0);
const io1 = io();
const cmd1 = await commandCalls(probe);
const n = r.rps * seconds;
const cmds = [...cmd1].map(([k, v]) => [k, (v - (cmd0.get(k) ?? 0)) / n] as const).filter(([k, v]) => v > 0.001 && k !== 'info').sort((a, b) => b[1] - a[1]);
console.log(`${mode}, ${connections} connections, ${seconds} s: ${r.rps.toFixed(0)} req/s, ${((used.user + used.system) / n).toFixed(1)} µs CPU/req (user ${(used.user / n).toFixed(1)}), ${((io1.wchar - io0.wchar) / n).toFixed(0)} bytes and ${((io1.syscw - io0.syscw) / n).toFixed(2)} writes per req, ${r.non2xx} non-2xx, ${r.errors} errors`);
console.log(`Redis commands per request: ${cmds.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
if (shape) {
  const c = shapes.calls;
  console.log(`per script call (${c} calls): parts ${[...shapes.parts].map(([k, v]) => `${k} ${(v / c).toFixed(2)}`).join(', ')}; part keys ${(shapes.keys / c).toFixed(1)}, part arguments ${(shapes.args / c).toFixed(1)}; call arguments ${(shapes.callArgs / c).toFixed(1)}, ${(shapes.callBytes / c).toFixed(0)} bytes`);
}
if (profOut) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(profOut, JSON.stringify(profile));
  console.log(`CPU profile of the measured run: ${profOut}`);
}
if (alloc) {
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const self = new Map<string, number>();
  let total = 0;
  const walk = (node: typeof profile.head): void => {
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${f.lineNumber + 1}`;
    if (node.selfSize > 0) { self.set(name, (self.get(name) ?? 0) + node.selfSize); total += node.selfSize; }
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  // Warm-up excluded; the sample sizes are V8's estimate of all bytes allocated at each site.
  console.log(`JS allocated: ${(total / n).toFixed(0)} bytes per request (sampled, includes the load's idle turns)`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(v / n).toFixed(0).padStart(8)}  ${k}`);
}
session.disconnect();
probe.disconnect();
await service.close();
await fakeApi.close();
process.exit(0);
