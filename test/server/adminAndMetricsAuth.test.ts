import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/metrics.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { basic } from '../support/drainClient.js';

/** The dashboard (read-only, behind the admin password) and /metrics behind its password. */
const redis = testRedis();
const queuePrefix = uniquePrefix('admin');
let queue: Queue;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
  await queue.add('puma-memory', { rule: 'puma-memory', app: 'my-app', target: 'web.1' }, { jobId: 'fdashboardtest' });
  app = await buildApp({
    logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }), redis,
    drainPassword: 'drain-password-1', metricsPassword: 'metrics-password-1', adminPassword: 'admin-password-1',
    getApps: () => undefined, ingest: async () => ({ duplicate: false, lines: 0, firings: 0 }), queue,
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => { await app.close(); await queue.close(); await cleanupPrefix(redis, queuePrefix); redis.disconnect(); });

describe('/admin/queues', () => {
  it('answers 401 without the admin password, and the drain password does not open it', async () => {
    expect((await fetch(`${url}/admin/queues`)).status).toBe(401);
    expect((await fetch(`${url}/admin/queues`, { headers: { Authorization: basic('drain-password-1') } })).status).toBe(401);
    expect((await fetch(`${url}/admin/queues/api/queues`, { headers: { Authorization: basic('wrong-password') } })).status).toBe(401);
  });

  it('shows the action queue and its jobs with the admin password', async () => {
    const page = await fetch(`${url}/admin/queues`, { headers: { Authorization: basic('admin-password-1') } });
    expect(page.status).toBe(200);
    const api = await fetch(`${url}/admin/queues/api/queues?activeQueue=${ACTION_QUEUE}&status=waiting&page=1&jobsPerPage=10`, { headers: { Authorization: basic('admin-password-1') } });
    expect(api.status).toBe(200);
    const body = await api.json() as { queues: Array<{ name: string; readOnlyMode: boolean; jobs: Array<{ id: string }> }> };
    const q = body.queues.find((x) => x.name === ACTION_QUEUE)!;
    expect(q.readOnlyMode).toBe(true);
    expect(q.jobs.map((j) => j.id)).toContain('fdashboardtest');
  });

  it('is read-only: a retry or clean through the API is refused', async () => {
    const res = await fetch(`${url}/admin/queues/api/queues/${ACTION_QUEUE}/clean/waiting`, { method: 'PUT', headers: { Authorization: basic('admin-password-1') } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await queue.getJob('fdashboardtest')).toBeDefined();
  });
});

describe('/metrics with MALLET_METRICS_PASSWORD', () => {
  it('needs the metrics password', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const ok = await fetch(`${url}/metrics`, { headers: { Authorization: basic('metrics-password-1') } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('# TYPE mallet_lines_total counter');
  });
});
