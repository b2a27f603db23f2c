import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import type { Job } from 'bullmq';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../../src/keys.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { Firing, ResolvedAction } from '../../src/rules/Firing.js';
import { DEFAULT_LIMITS, type Limits } from '../../src/rules/RuleSet.js';
import { ActionQueue } from '../../src/actions/queue.js';
import { startActionWorker, type ActionWorker, type ActionWorkerOptions } from '../../src/actions/worker.js';
import type { ActionJobData } from '../../src/actions/ActionJob.js';
import { consumeStopKeys } from '../support/stopKeyConsumer.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/** One isolated action layer per test: its own key prefix, BullMQ prefix, metrics and closers. */
export interface Harness {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly prefix: string;
  readonly queuePrefix: string;
  readonly metrics: Metrics;
  limits: Limits;
  /**
   * Stop keys under the test's `puma::stop::` prefix taken by the stand-in consumer (like the
   * Puma plugin, it deletes what it takes), key → value. Keys elsewhere are left to expire.
   */
  readonly taken: Map<string, string>;
  /** A stop key under the test's prefix (so parallel files never share one). */
  stopKey(target: string): string;
  stopAction(target?: string, ttlMs?: number): ResolvedAction;
  queue(opts?: { dryRun?: boolean; attempts?: number }): ActionQueue;
  worker(opts?: Partial<ActionWorkerOptions>): ActionWorker;
  close(): Promise<void>;
}

export const silentLogger = pino({ level: 'silent' });

export function createHarness(name: string): Harness {
  const redis = testRedis();
  const prefix = uniquePrefix(name);
  const queuePrefix = uniquePrefix(`${name}q`);
  const keys = redisKeys(prefix);
  const metrics = createMetrics(undefined, { defaults: false });
  const closers: Array<() => Promise<void>> = [];
  const { taken, stop } = consumeStopKeys(redis, prefix);
  closers.push(async () => stop());
  const h: Harness = {
    redis, keys, prefix, queuePrefix, metrics, taken,
    limits: { ...DEFAULT_LIMITS, perApp: { maxFirings: 100, withinMs: 600_000 }, flapping: { maxFirings: 100, withinMs: 3_600_000 } },
    stopKey: (target) => `${prefix}:puma::stop::${target}`,
    stopAction: (target = 'web.1', ttlMs = 60_000) => ({ type: 'redis-stop-key', key: `${prefix}:puma::stop::${target}`, value: '1', ttlMs }),
    queue(opts = {}) {
      const q = new ActionQueue({
        connection: redis, queuePrefix, keys, metrics, logger: silentLogger,
        dryRun: opts.dryRun ?? false, getLimits: () => h.limits, backoffMs: 50,
        ...(opts.attempts !== undefined ? { attempts: opts.attempts } : {}),
      });
      closers.push(() => q.close());
      return q;
    },
    worker(opts = {}) {
      const w = startActionWorker({
        connection: redis, queuePrefix, keys, metrics, logger: silentLogger,
        env: { ...process.env }, herokuApiUrl: 'http://127.0.0.1:9', getLimits: () => h.limits,
        rollingRetryMs: 50, ...opts,
      });
      closers.push(() => w.close(5000));
      return w;
    },
    async close() {
      for (const c of closers.reverse()) await c();
      await cleanupPrefix(redis, prefix, queuePrefix);
      redis.disconnect();
    },
  };
  return h;
}

export function makeFiring(overrides: Partial<Firing> & { actions: ResolvedAction[] }): Firing {
  const target = overrides.target ?? 'web.1';
  return {
    id: `f-${randomBytes(6).toString('hex')}`,
    rule: 'puma-memory',
    app: 'my-app',
    target,
    processType: target.split('.')[0]!,
    window: '1700000000000',
    firedAt: Date.now(),
    receivedAt: Date.now(),
    triggerLines: [`2023-04-06T19:13:35.126587+00:00 heroku[${target}]: Error R14 (Memory quota exceeded)`],
    dryRun: false,
    ...overrides,
  };
}

/** Polls the job until it completed or failed (returns its state); never asserts on time. */
export async function settled(queue: ActionQueue, id: string, limitMs = 20_000): Promise<{ state: string; job: Job<ActionJobData> }> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const state = await queue.queue.getJobState(id);
    // Read after the state: a job read first may have settled in between, without its result.
    const job = state === 'completed' || state === 'failed' ? await queue.queue.getJob(id) : undefined;
    if (job) return { state, job };
    if (Date.now() > deadline) throw new Error(`job ${id} still ${state} after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function jobLogs(queue: ActionQueue, id: string): Promise<string[]> {
  return (await queue.queue.getJobLogs(id, 0, -1)).logs;
}

export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number }>;
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((s, v) => s + v.value, 0);
}

/** A webhook receiver: answers from a queue of statuses (then 200; 0 = never answer) and keeps every body. */
export async function startWebhook(): Promise<{ url: string; bodies: Array<Record<string, unknown>>; statuses: number[]; close(): Promise<void> }> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const bodies: Array<Record<string, unknown>> = [];
  const statuses: number[] = [];
  app.post('/hook/:secret', async (req, reply) => {
    bodies.push(req.body as Record<string, unknown>);
    const status = statuses.shift() ?? 200;
    if (status === 0) await new Promise(() => {});
    return reply.code(status).send({ ok: true });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/hook/s3cr3t-token`, bodies, statuses, close: () => app.close() };
}

export { consumeStopKeys };
