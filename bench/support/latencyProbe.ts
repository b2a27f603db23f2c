/**
 * Trigger latency of a `mallet serve` process, timed by the service's own clocks: each probe is
 * one R14 line for a dyno no other probe names (`probe.N` of an app of its own), so no cooldown,
 * threshold window, vote cap or target budget is shared between probes. Its span is read back
 * from what the service stored: the body's arrival (`receivedAt` in the job data, taken by the
 * drain route), the body judged (`submittedAt`), the job built once admitted (`timestamp`), the worker taking it (`processedOn`) and the stop
 * key written (the step ledger's record, made as the SET's reply arrives). A separate subscriber
 * process (wakeWatcher.ts) times the PUBLISH that follows the SET as a check on the worker's clock.
 * The bench process only posts and waits: its own pauses cannot enter the figures.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { redisKeys } from '../../src/keys.js';
import { ACTION_QUEUE } from '../../src/keys.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface ProbeSpan {
  readonly n: number;
  /** ms from the body's arrival at the drain route: the body judged, its firing handed to the queue (job data `submittedAt`). */
  readonly judged: number;
  /** The firing admitted (storm guard, flapping) and its job built (the job's `timestamp`), its add sent. */
  readonly enqueued: number;
  readonly taken: number;
  readonly keyWritten: number;
  /** The subscriber's receipt of the wake PUBLISH (NaN when it saw none). */
  readonly woke: number;
  /** Jobs active in the worker when the probe was posted. */
  readonly activeBefore: number;
}

export interface ProbeMiss { readonly n: number; readonly why: string }

export interface ProbeRun { readonly spans: ProbeSpan[]; readonly misses: ProbeMiss[] }

export interface ProbeOptions {
  readonly url: string;
  readonly auth: string;
  readonly redis: Redis;
  readonly redisUrl: string;
  /** The serve process's MALLET_KEY_PREFIX = MALLET_QUEUE_PREFIX. */
  readonly prefix: string;
  /** The probe rule's stop key with `{{target}}` replaced by the dyno. */
  readonly stopKey: (dyno: string) => string;
  readonly app: string;
  readonly rule: string;
  readonly count: number;
  readonly gapMs: number;
  /** How long a probe's key is waited for before it is counted as missed, and why. */
  readonly timeoutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runProbes(o: ProbeOptions): Promise<ProbeRun> {
  const watcher = spawn(process.execPath, ['--import', 'tsx', join(here, 'wakeWatcher.ts'), o.redisUrl, `mallet:wake:${o.stopKey('probe.*')}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const woke = new Map<string, number>();
  const lines = createInterface({ input: watcher.stdout! });
  const ready = new Promise<void>((resolve) => {
    lines.on('line', (l) => {
      const m = JSON.parse(l) as { ready?: true; channel?: string; at?: number };
      if (m.ready) resolve();
      else if (m.channel && !woke.has(m.channel)) woke.set(m.channel, m.at!);
    });
  });
  await ready;
  const queueKey = `${o.prefix}:${ACTION_QUEUE}`;
  const posted: Array<{ n: number; dyno: string; status: number; activeBefore: number; seen: boolean }> = [];
  for (let n = 1; n <= o.count; n++) {
    const dyno = `probe.${n}`;
    const ts = new Date().toISOString().replace('Z', '+00:00');
    const text = `<134>1 ${ts} host heroku ${dyno} - Error R14 (Memory quota exceeded)\n`;
    const body = Buffer.concat([Buffer.from(`${Buffer.byteLength(text)} `), Buffer.from(text)]);
    const activeBefore = await o.redis.llen(`${queueKey}:active`);
    const res = await fetch(`${o.url}/drains/${o.app}`, { method: 'POST', headers: { 'content-type': 'application/logplex-1', authorization: o.auth }, body: new Uint8Array(body) });
    await res.arrayBuffer();
    let seen = false;
    if (res.status === 204) {
      const until = Date.now() + o.timeoutMs;
      while (Date.now() < until) {
        if (await o.redis.exists(o.stopKey(dyno))) { seen = true; break; }
        await sleep(5);
      }
    }
    posted.push({ n, dyno, status: res.status, activeBefore, seen });
    await sleep(o.gapMs);
  }
  await sleep(200);
  watcher.kill('SIGTERM');

  // Every job of the probe rule, by target, read back from the queue's job hashes.
  const keys = redisKeys(o.prefix, o.prefix);
  const jobs = new Map<string, { id: string; receivedAt: number; submittedAt: number; timestamp: number; processedOn?: number }>();
  let cursor = '0';
  do {
    const [next, found] = await o.redis.scan(cursor, 'MATCH', `${queueKey}:f*`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const id = /:(f[0-9a-f]{40})$/.exec(key)?.[1];
      if (!id) continue;
      const [data, timestamp, processedOn] = await o.redis.hmget(key, 'data', 'timestamp', 'processedOn');
      if (!data) continue;
      const d = JSON.parse(data) as { rule: string; app: string; target: string; receivedAt: number; submittedAt: number };
      if (d.rule !== o.rule || d.app !== o.app) continue;
      jobs.set(d.target, { id, receivedAt: d.receivedAt, submittedAt: d.submittedAt, timestamp: Number(timestamp), ...(processedOn ? { processedOn: Number(processedOn) } : {}) });
    }
  } while (cursor !== '0');

  const spans: ProbeSpan[] = [];
  const misses: ProbeMiss[] = [];
  for (const p of posted) {
    const job = jobs.get(p.dyno);
    if (p.status !== 204) { misses.push({ n: p.n, why: `answered ${p.status}` }); continue; }
    if (!job) { misses.push({ n: p.n, why: 'no firing stored (no job)' }); continue; }
    const step = await o.redis.hget(keys.jobSteps(job.id), '0');
    if (!step) {
      const state = await jobState(o.redis, queueKey, job.id);
      misses.push({ n: p.n, why: `job ${state}, stop key not written within ${o.timeoutMs} ms${job.processedOn ? `; taken ${job.processedOn - job.receivedAt} ms after arrival` : '; not taken'}` });
      continue;
    }
    const at = (JSON.parse(step) as { at: number }).at;
    spans.push({
      n: p.n, activeBefore: p.activeBefore,
      judged: job.submittedAt - job.receivedAt,
      enqueued: job.timestamp - job.receivedAt,
      taken: (job.processedOn ?? NaN) - job.receivedAt,
      keyWritten: at - job.receivedAt,
      woke: (woke.get(`mallet:wake:${o.stopKey(p.dyno)}`) ?? NaN) - job.receivedAt,
    });
    if (!p.seen) misses.push({ n: p.n, why: `key written ${at - job.receivedAt} ms after arrival, after the bench stopped waiting` });
  }
  return { spans, misses };
}

async function jobState(redis: Redis, queueKey: string, id: string): Promise<string> {
  if ((await redis.lpos(`${queueKey}:wait`, id)) !== null) return 'waiting';
  if ((await redis.lpos(`${queueKey}:active`, id)) !== null) return 'active';
  if ((await redis.zscore(`${queueKey}:delayed`, id)) !== null) return 'delayed';
  if ((await redis.zscore(`${queueKey}:prioritized`, id)) !== null) return 'prioritized';
  if ((await redis.zscore(`${queueKey}:completed`, id)) !== null) return 'completed';
  if ((await redis.zscore(`${queueKey}:failed`, id)) !== null) return 'failed';
  return 'in no list';
}

/** p-th percentile (nearest rank) of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}
