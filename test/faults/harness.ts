import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { basic, drainLine, frame } from '../support/drainClient.js';
import { spawnMallet, type MalletProcess } from '../support/malletProcess.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { freePort } from '../support/freePort.js';

export { freePort };

/**
 * Break it and count (after Jepsen): drain load whose every body carries one R14 line for a dyno
 * of its own, so each body is exactly one expected firing; a fault in the middle; then every
 * firing is counted where it lands (the notify receiver, the stop keys), never sampled.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A redis-server of this test alone (never the shared one), append-only, restartable on its port and data. */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mallet-fault-redis-'));
  let child: ChildProcess | undefined;
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals) => {
    if (!alive()) return;
    const c = child!;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'], { stdio: 'ignore' });
      for (let i = 0; i < 200; i++) {
        if (await ping(port)) return;
        await sleep(25);
      }
      throw new Error(`private redis-server on ${port} did not answer`);
    },
    kill,
    async stop() { await kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); },
  };
}

/**
 * Receives notify steps: counts per target only the deliveries answered while the sender still
 * listened (a request cut off by a killed worker was not delivered). `hold` keeps the first
 * requests unanswered for a while (a step in flight to kill).
 */
export interface Receiver {
  readonly url: string;
  readonly delivered: Map<string, number>;
  /** When each target's first delivery was answered (ms since the epoch). */
  readonly firstAt: Map<string, number>;
  /** Requests arrived (answered or not). */
  arrived: number;
  holdNext(n: number): void;
  /** Resets the held requests (their steps fail and are retried). */
  releaseHeld(): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const delivered = new Map<string, number>();
  const firstAt = new Map<string, number>();
  let hold = 0;
  const held: ServerResponse[] = [];
  const self = {
    url: '', delivered, firstAt, arrived: 0,
    holdNext(n: number) { hold = n; },
    releaseHeld() { for (const res of held.splice(0)) res.destroy(); },
    close: () => new Promise<void>((r) => { for (const res of held) res.destroy(); server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      self.arrived++;
      if (hold > 0) { hold--; held.push(res); return; }
      const target = /FAULT-TARGET=([A-Za-z0-9._-]+)/.exec(body)?.[1] ?? '?';
      res.on('finish', () => {
        delivered.set(target, (delivered.get(target) ?? 0) + 1);
        if (!firstAt.has(target)) firstAt.set(target, Date.now());
      });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  self.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return self;
}

export const TOKEN = 'd.11111111-2222-4333-8444-555555555555';

/** One rule: an R14 on any web dyno fires once (count 1) and sets a stop key and notifies; limits out of the way. */
export function faultRules(prefix: string, extra = ''): { file: string; rules: string } {
  const rules = `version: 1
rules:
  - name: fault-r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 1, within: 1m }
    cooldown: 1h
    actions:
      - type: redis-stop-key
        key: "${prefix}-stop:{{target}}"
        ttl: 1h
        watch: false${extra}
      - type: notify
        url: \${FAULT_NOTIFY_URL}
        text: "FAULT-TARGET={{target}}"
limits:
  per_app: { max_firings: 100000, within: 1m }
  per_process_type: { concurrency: 1000 }
  flapping: { max_firings: 1000, within: 1m }
`;
  return { file: tempRulesFile(rules).file, rules };
}

export const PASSWORD = `fault-${randomBytes(8).toString('hex')}`;

export function malletEnv(redisUrl: string, prefix: string, rules: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn',
    MALLET_DRAIN_PASSWORD: PASSWORD, REDIS_URL: redisUrl, MALLET_RULES: rules, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: `${prefix}-q`,
    ...extra,
  };
}

/**
 * `mallet serve` on a port chosen here, ready once /readyz answers 200 (at log level warn: the
 * helper that waits for a log line rescans all output per chunk, too slow under thousands of
 * 'firing stored' lines). `mallet worker` logs at info and is ready at 'mallet worker started'.
 */
export async function serve(env: Record<string, string | undefined>, mode: 'serve' | 'worker' = 'serve'): Promise<MalletProcess & { url: string }> {
  if (mode === 'worker') {
    const m = spawnMallet(['worker'], { env: { ...env, LOG_LEVEL: 'info' } });
    await m.waitForLog(/mallet worker started/, 60_000);
    return Object.assign(m, { url: '' });
  }
  const port = await freePort();
  const m = spawnMallet(['serve'], { env: { ...env, PORT: String(port) } });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (m.child.exitCode !== null) throw new Error(`mallet serve exited: ${m.output()}`);
    try { if ((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200) return Object.assign(m, { url }); } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error(`mallet serve not ready: ${m.output()}`);
}

/** What happened to one body, as logplex would deliver it: up to 3 attempts, same frame id, 5 s each. */
export interface Delivery {
  readonly dyno: string;
  readonly statuses: Array<number | string>;
  readonly accepted: boolean;
}

export interface LoadOptions {
  /** Round-robin over these (a load balancer); a refused connection tries the next. */
  urls: () => readonly string[];
  app: string;
  /** Distinct dynos: body n carries `Error R14` for `web.<base + n>`. */
  dynoBase: number;
  concurrency: number;
  maxBodies: number;
  maxMs: number;
  /** Lines per body besides the R14 (router lines). */
  filler?: number;
}

export async function drainLoad(o: LoadOptions): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const started = Date.now();
  let next = 0;
  let rr = 0;
  const filler = Array.from({ length: o.filler ?? 20 }, (_, i) => drainLine('heroku', 'router', `at=info method=GET path="/x/${i}" host=a.example connect=1ms service=3ms status=200 bytes=10`));
  const one = async (n: number) => {
    const dyno = `web.${o.dynoBase + n}`;
    // A new dyno per body is a fan-out the per-app target budget cuts at 500 within 10 minutes
    // (README Limits): 250 dynos an app keeps every body judged, however fast the machine sends.
    const app = `${o.app}-${o.dynoBase}-${Math.floor(n / 250)}`;
    const body = frame(...filler.slice(0, 10), drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)'), ...filler.slice(10));
    const frameId = `F${o.dynoBase}X${n}`;
    const statuses: Array<number | string> = [];
    let accepted = false;
    for (let attempt = 0; attempt < 3 && !accepted; attempt++) {
      if (attempt > 0) await sleep(300);
      const urls = o.urls();
      const url = urls[rr++ % urls.length]!;
      try {
        const res = await fetch(`${url}/drains/${app}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/logplex-1', Authorization: basic(PASSWORD), 'Logplex-Frame-Id': frameId, 'Logplex-Drain-Token': TOKEN, 'Logplex-Msg-Count': String(filler.length + 1) },
          body: new Uint8Array(body),
          signal: AbortSignal.timeout(5000),
        });
        await res.arrayBuffer();
        statuses.push(res.status);
        accepted = res.status >= 200 && res.status < 300;
      } catch (err) {
        statuses.push((err as Error).name === 'TimeoutError' ? 'timeout' : 'refused');
      }
    }
    deliveries.push({ dyno, statuses, accepted });
  };
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (next < o.maxBodies && Date.now() - started < o.maxMs) await one(next++);
  }));
  return deliveries;
}

/** One row of the fault table. */
export interface FaultRow {
  fault: string;
  bodies: number | string;
  ok2xx: number | string;
  answered503: number | string;
  expected: number;
  seen: number;
  doubled: number;
  note?: string;
}

export function rowFromLoad(fault: string, deliveries: readonly Delivery[], delivered: ReadonlyMap<string, number>, note?: string): FaultRow {
  const accepted = deliveries.filter((d) => d.accepted);
  return {
    fault,
    bodies: deliveries.length,
    ok2xx: accepted.length,
    answered503: deliveries.reduce((n, d) => n + d.statuses.filter((s) => s === 503).length, 0),
    expected: accepted.length,
    seen: accepted.filter((d) => (delivered.get(d.dyno) ?? 0) >= 1).length,
    doubled: [...delivered.values()].filter((n) => n > 1).length,
    ...(note ? { note } : {}),
  };
}

/** Waits until every expected target was notified (or the time is up), then a little longer to catch doubles. */
export async function settle(expected: readonly string[], delivered: ReadonlyMap<string, number>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && !expected.every((d) => (delivered.get(d) ?? 0) >= 1)) await sleep(200);
  await sleep(1500);
}

export const TABLE_FILE = process.env.MALLET_FAULT_TABLE ?? join('.ci', 'out', 'faults.md');

export function recordRow(row: FaultRow): void {
  mkdirSync(dirname(TABLE_FILE), { recursive: true });
  appendFileSync(TABLE_FILE, JSON.stringify(row) + '\n');
}

/**
 * What mallet's Redis holds for each accepted body whose firing never arrived: its attempts,
 * every key naming its dyno, and its job (state, logs). A rare loss then says where it stopped.
 */
export async function explainMissing(redisUrl: string, queuePrefix: string, deliveries: readonly Delivery[], delivered: ReadonlyMap<string, number>): Promise<string> {
  const missing = deliveries.filter((d) => d.accepted && (delivered.get(d.dyno) ?? 0) === 0).slice(0, 5);
  if (missing.length === 0) return '';
  return `firings not delivered (first ${missing.length}):\n${await describeDynos(redisUrl, queuePrefix, missing)}`;
}

/** What mallet's Redis holds for these bodies' dynos: their attempts, the keys naming them, their jobs (state, logs). */
export async function describeDynos(redisUrl: string, queuePrefix: string, missing: readonly Delivery[]): Promise<string> {
  const { Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  const lines: string[] = [];
  try {
    await r.connect();
    const all: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
      cursor = next;
      all.push(...keys);
    } while (cursor !== '0');
    const queue = `${queuePrefix}:mallet-actions`;
    const states = ['wait', 'active', 'delayed', 'prioritized', 'paused', 'completed', 'failed'];
    for (const d of missing) {
      lines.push(`${d.dyno}: attempts ${d.statuses.join(', ')}`);
      const re = new RegExp(`\\b${d.dyno.replace('.', '\\.')}\\b`);
      for (const key of all.filter((k) => re.test(k)).sort()) lines.push(`  key ${key} (${await r.type(key)}, ttl ${await r.pttl(key)} ms)`);
      for (const key of all.filter((k) => k.startsWith(`${queue}:`) && !k.endsWith(':logs') && !k.endsWith(':lock'))) {
        if ((await r.type(key)) !== 'hash') continue;
        const data = await r.hget(key, 'data');
        if (data === null || !data.includes(`"${d.dyno}"`)) continue;
        const id = key.slice(queue.length + 1);
        const inState: string[] = [];
        for (const s of states) {
          const t = await r.type(`${queue}:${s}`);
          const hit = t === 'list' ? (await r.lpos(`${queue}:${s}`, id)) !== null : t === 'zset' ? (await r.zscore(`${queue}:${s}`, id)) !== null : false;
          if (hit) inState.push(s);
        }
        const job = await r.hgetall(key);
        lines.push(`  job ${id}: in ${inState.join(', ') || 'no state list'}; attemptsMade ${job.atm ?? '0'}, stalled ${job.stc ?? '0'}, failedReason ${job.failedReason ?? '-'}`);
        for (const log of await r.lrange(`${key}:logs`, 0, -1)) lines.push(`    log: ${log}`);
      }
    }
  } catch (err) {
    lines.push(`(could not read mallet's Redis: ${(err as Error).message})`);
  } finally {
    r.disconnect();
  }
  return lines.join('\n');
}
