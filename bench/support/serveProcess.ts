/**
 * `mallet serve` as its own process for the drain benchmarks: the example rules with the limits
 * opened up (the benchmark measures the path, not the storm guard), a key prefix of its own, and
 * the CPU the whole process tree has used, read from /proc, so a benchmark can print CPU per request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from '../../test/support/freePort.js';
import { Redis } from 'ioredis';

export { freePort };

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The stop key of the latency probes of one serve process (`{{target}}`: the probe's dyno). */
export function probeStopKey(prefix: string): string {
  return `${prefix}::stop::{{target}}`;
}

/**
 * The example rules plus a probe rule for latency runs, limits opened up. The probe's stop key is
 * not watched for consumption (nobody consumes it: a watched key would hold a worker slot for its
 * TTL); the example rules' keys are, as they are in production.
 */
export function benchRules(dir: string, stopKey = 'mallet-bench::stop::{{target}}'): string {
  const rules = parse(readFileSync(join(root, 'config/rules.example.yml'), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
  delete rules.apps;
  rules.rules.push({ name: 'latency-probe', match: { source: 'heroku', process: 'probe.*', message: '^Error R14 ' }, cooldown: '1h', actions: [{ type: 'redis-stop-key', key: stopKey, ttl: '60s', watch: false }] });
  rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
  const path = join(dir, 'rules.yml');
  writeFileSync(path, stringify(rules));
  return path;
}

/** Clock ticks of a process and its reaped children (utime + stime + cutime + cstime), in µs. */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after "(comm)": state is index 0, so utime (14) is index 11.
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
}

/** The CPU of a process and every live descendant (node:cluster children). */
export function treeCpuUs(pid: number): number {
  let total = 0;
  const seen = new Set<number>();
  const walk = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try { total += processCpuUs(p); } catch { return; }
    for (const tid of readdirSync(`/proc/${p}/task`)) {
      let children = '';
      try { children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8'); } catch { continue; }
      for (const c of children.split(' ').filter(Boolean)) walk(Number(c));
    }
  };
  walk(pid);
  return total;
}

/**
 * The node flags of the Procfile's `web:` line (the young generation, README "Node flags"), so
 * the serve measured runs as on a dyno; a caller's own semi-space flag replaces them (A/B runs).
 */
function webFlags(rootDir: string, nodeArgs: readonly string[]): string[] {
  if (nodeArgs.some((a) => a.includes('semi-space'))) return [...nodeArgs];
  let procfile = '';
  try { procfile = readFileSync(join(rootDir, 'Procfile'), 'utf8'); } catch { /* a tree without one */ }
  const web = /^web:\s*node\s+(.*?)\s*bin\/mallet\.js serve\s*$/m.exec(procfile);
  return [...(web?.[1] ?? '').split(/\s+/).filter((f) => f.startsWith('--')), ...nodeArgs];
}

export interface ServeProcess {
  readonly url: string;
  readonly pid: number;
  readonly prefix: string;
  cpuUs(): number;
  stop(): Promise<void>;
}

/** `root`: a built checkout to run (its bin/mallet.js), this one by default: an A/B run compares two builds. */
export async function startServe(opts: { redisUrl: string; password: string; processes?: number; nodeArgs?: string[]; env?: Record<string, string>; root?: string }): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-bench-serve-'));
  const port = await freePort();
  const prefix = `mallet-bench-${process.pid}-${port}`;
  const child: ChildProcess = spawn(process.execPath, [...webFlags(opts.root ?? root, opts.nodeArgs ?? []), join(opts.root ?? root, 'bin/mallet.js'), 'serve'], {
    env: {
      ...process.env, REDIS_URL: opts.redisUrl, PORT: String(port), HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: opts.password,
      MALLET_RULES: benchRules(dir, probeStopKey(prefix)), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn',
      MALLET_LOG_FORMAT: 'json', WEB_CONCURRENCY: String(opts.processes ?? 1), ...opts.env,
    },
    stdio: ['ignore', process.env.BENCH_SERVE_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  // A benchmark that fails must not leave its servers running.
  const orphan = () => { if (child.exitCode === null) child.kill('SIGTERM'); };
  process.once('exit', orphan);
  const url = `http://127.0.0.1:${port}`;
  // Generous: two processes on a busy 2-core machine take a while to load.
  const readyS = Number(process.env.BENCH_SERVE_READY_S ?? 120);
  const until = Date.now() + readyS * 1000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mallet serve exited ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > until) { child.kill('SIGTERM'); throw new Error(`mallet serve did not become ready in ${readyS} s`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    url, pid, prefix,
    cpuUs: () => treeCpuUs(child.pid!),
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/**
 * A redis-server of the run's own on a free port (nothing kept on disk), stopped when the process
 * exits, so other work on the shared Redis stays out of the figures; resolves once it answers.
 */
export async function startPrivateRedis(): Promise<string> {
  const port = await freePort();
  const redisProc = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  process.once('exit', () => redisProc.kill('SIGTERM'));
  const redisUrl = `redis://127.0.0.1:${port}`;
  for (;;) {
    const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try { await probe.connect(); probe.disconnect(); return redisUrl; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
}

/** Delete the keys a bench wrote (SCAN, not KEYS: the Redis may be shared). */
export async function deleteMatching(redis: Redis, ...patterns: string[]): Promise<void> {
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (found.length) await redis.del(...found);
    } while (cursor !== '0');
  }
}
