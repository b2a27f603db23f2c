/**
 * Syslog drain throughput: one TCP connection carrying N octet-counted syslog-drain frames
 * (`<PRI>1 TS d.<token> APP PROC - - MSG`, the benchmark corpus rewritten to the syslog drain's
 * header) through the whole service (listener, parse, the example rules, thresholds in Redis)
 * vs rsyslog on the same bytes: `imtcp` with octet-counted framing and one ruleset whose regex
 * filter `^ ?Error R1[45] ` writes matches to a file. Both are timed from the first byte sent to
 * the moment a marker frame sent last has been processed (mallet: its rule wrote a stop key;
 * rsyslog: its file action wrote the marker), and the CPU each server spent is read beside it.
 *
 *   node --import tsx bench/syslog.bench.ts [--lines 1000000] [--rounds 3] [--profile out.cpuprofile]
 * Needs Debian's `rsyslog` (`rsyslogd` on PATH or in /usr/sbin); without it only mallet runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createConnection } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { startService } from '../src/server/service.js';
import { deleteMatching } from './support/serveProcess.js';
import { BENCH_MARKER as MARKER, BENCH_TOKEN as TOKEN, syslogStream } from './support/syslogStream.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', Number(process.env.BENCH_SYSLOG_LINES ?? 1_000_000));
const ROUNDS = arg('rounds', Number(process.env.BENCH_ROUNDS ?? 3));
const pi = process.argv.indexOf('--profile');
/** A CPU profile of the measured mallet rounds only (`--profile out.cpuprofile`). */
const PROFILE = pi >= 0 ? process.argv[pi + 1] : undefined;
const dir = mkdtempSync(join(tmpdir(), 'mallet-syslog-bench-'));

// ---------------------------------------------------------------- the stream
const cpuInfo = cpus();
console.log(`machine: ${cpuInfo.length} × ${cpuInfo[0]?.model ?? 'unknown cpu'}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at start, node ${process.version}`);
const { stream, frames } = await syslogStream(LINES);
console.log(`stream: ${frames - 1} frames + 1 marker, ${(stream.length / 2 ** 20).toFixed(1)} MiB, one connection`);
const streamFile = join(dir, 'stream.syslog');
writeFileSync(streamFile, stream);

/** Sends the stream from its own process, so the server's CPU is its own. */
function send(port: number): ChildProcess {
  const code = `const s=require('net').createConnection({host:'127.0.0.1',port:${port}},()=>{require('fs').createReadStream(process.argv[1]).pipe(s)});s.on('error',()=>{});`;
  return spawn(process.execPath, ['-e', code, streamFile], { stdio: 'ignore' });
}

function cpuOfPid(pid: number): number {
  // utime + stime in clock ticks (fields 14, 15 of /proc/PID/stat; the name may hold spaces).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // ms, at 100 ticks/s
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 2): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------- mallet
const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
rules.apps = { 'bench-app': { drain_tokens: [TOKEN] } };
rules.rules.push({ name: 'bench-marker', match: { source: 'app', message: `^${MARKER}` }, cooldown: '1s', actions: [{ type: 'redis-stop-key', key: 'mallet-bench-syslog::marker', ttl: '60s' }] });
rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
const rulesPath = join(dir, 'rules.yml');
writeFileSync(rulesPath, stringify(rules));
const prefix = `mallet-syslog-bench-${process.pid}`;
const service = await startService({
  config: loadConfig({
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: 'bench-password',
    MALLET_RULES: rulesPath, MALLET_SYSLOG_PORT: '0', MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent',
  }),
  logger: pino({ level: 'silent' }),
});
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
// The service's Redis commands and body-script calls, counted per round: what one batch costs.
let commands = 0;
let scripts = 0;
const sendCommand = service.redis.sendCommand.bind(service.redis);
service.redis.sendCommand = ((cmd: { name?: string }, ...rest: unknown[]) => {
  commands++;
  if (cmd?.name === 'evalsha' || cmd?.name === 'eval') scripts++;
  return (sendCommand as (...x: unknown[]) => unknown)(cmd, ...rest);
}) as typeof service.redis.sendCommand;
const session = PROFILE ? new Session() : undefined;
const post = (method: string) => new Promise((resolve, reject) => session!.post(method, (err, res) => (err ? reject(err) : resolve(res))));
if (session) { session.connect(); await post('Profiler.enable'); }

async function runMallet(measured = true): Promise<{ ms: number; cpuMs: number } | undefined> {
  await redis.del('mallet-bench-syslog::marker');
  if (measured && session) await post('Profiler.start');
  const c0 = commands;
  const s0 = scripts;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sender = send(service.syslogPort!);
  // Every 10 ms, not 2: the poll is a Redis round trip made in mallet's process, so its CPU
  // would be counted as mallet's (~0.1 µs a line at 2 ms); 10 ms moves a 4 s round by ≤ 0.25 %.
  const ok = await until(async () => (await redis.exists('mallet-bench-syslog::marker')) === 1, 300_000, 10);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  sender.kill();
  if (measured) console.log(`mallet: ${commands - c0} Redis commands (${scripts - s0} script calls) for ${frames} lines: ${((commands - c0) / frames * 1000).toFixed(2)} per 1000 lines`);
  if (measured && session) {
    const { profile } = await post('Profiler.stop') as { profile: unknown };
    writeFileSync(PROFILE!, JSON.stringify(profile));
  }
  // The marker fires once per cooldown; let it pass so the next round fires again.
  await new Promise((r) => setTimeout(r, 1100));
  return ok ? { ms, cpuMs: (cpu.user + cpu.system) / 1000 } : undefined;
}

// ---------------------------------------------------------------- rsyslog
const rsyslogd = ['/usr/sbin/rsyslogd', '/usr/bin/rsyslogd'].find((p) => existsSync(p))
  ?? (spawnSync('sh', ['-c', 'command -v rsyslogd']).stdout?.toString().trim() || undefined);

async function runRsyslog(round: number): Promise<{ ms: number; cpuMs: number } | undefined> {
  if (!rsyslogd) return undefined;
  const work = join(dir, `rsyslog-${round}`);
  spawnSync('mkdir', ['-p', work]);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const matches = join(work, 'matches.log');
  const marker = join(work, 'marker.log');
  writeFileSync(join(work, 'rsyslog.conf'), `
global(workDirectory="${work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${port}" ruleset="bench" SupportOctetCountedFraming="on")
ruleset(name="bench") {
  if re_match($msg, "^ ?Error R1[45] ") then { action(type="omfile" file="${matches}") }
  if $msg contains "${MARKER}" then { action(type="omfile" file="${marker}") }
}
`);
  const child = spawn(rsyslogd, ['-n', '-f', join(work, 'rsyslog.conf'), '-i', join(work, 'rsyslog.pid')], { stdio: 'ignore' });
  try {
    if (!(await until(() => portOpen(port), 10_000))) return undefined;
    const cpu0 = cpuOfPid(child.pid!);
    const t0 = performance.now();
    const sender = send(port);
    const ok = await until(() => existsSync(marker) && statSync(marker).size > 0, 300_000);
    const ms = performance.now() - t0;
    const cpuMs = cpuOfPid(child.pid!) - cpu0;
    sender.kill();
    const matched = existsSync(matches) ? readFileSync(matches, 'utf8').split('\n').length - 1 : 0;
    if (round === 0) console.log(`rsyslog matched ${matched} lines of ${frames}`);
    return ok ? { ms, cpuMs } : undefined;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

// ---------------------------------------------------------------- rounds, alternating
await runMallet(false); // warm-up: JIT, scripts loaded
const m: Array<{ ms: number; cpuMs: number }> = [];
const r: Array<{ ms: number; cpuMs: number }> = [];
for (let round = 0; round < ROUNDS; round++) {
  const a = await runMallet();
  if (a) m.push(a);
  const b = await runRsyslog(round);
  if (b) r.push(b);
  const rate = (x: { ms: number } | undefined) => (x ? `${(frames / (x.ms / 1000) / 1000).toFixed(0)} k lines/s` : 'did not finish');
  console.log(`round ${round + 1}: mallet ${rate(a)}, rsyslog ${rsyslogd ? rate(b) : 'not installed'}`);
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
const row = (name: string, xs: Array<{ ms: number; cpuMs: number }>) => {
  const ms = median(xs.map((x) => x.ms));
  const cpu = median(xs.map((x) => x.cpuMs));
  console.log(`| ${name} | ${(frames / (ms / 1000) / 1000).toFixed(0)} k | ${(ms / 1000).toFixed(2)} s | ${(cpu * 1000 / frames).toFixed(2)} µs |`);
  return ms;
};
console.log(`\n${ROUNDS} rounds, alternating, median; CPU of the server process only (the sender runs in its own process)\n`);
console.log('| server | lines/s | first byte → marker processed | server CPU per line |');
console.log('|---|---:|---:|---:|');
const mMs = row('mallet (listener, parse, example rules, Redis)', m);
if (r.length > 0) {
  const rMs = row('rsyslog (imtcp octet-counted, regex filter → file)', r);
  console.log(`\nmallet vs rsyslog, lines/s: ${(rMs / mMs).toFixed(2)}× (target ≥ 3×)`);
} else {
  console.log('\n(rsyslog not installed: `apt-get install rsyslog` to measure the baseline)');
}

// After the service: its worker records the marker job's step once the key is written.
await service.close();
await deleteMatching(redis, 'mallet-bench-syslog::*', `${prefix}*`);
redis.disconnect();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
