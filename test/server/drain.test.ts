import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { Pipeline, type Evaluator } from '../../src/server/pipeline.js';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import type { Firing, FiringOutcome } from '../../src/rules/Firing.js';
import type { AppEntry } from '../../src/rules/RuleSet.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain, sampleBody } from '../support/drainClient.js';

/** Status codes of SPEC §3 over a real socket, real Redis for the frame de-duplication. */
const PASSWORD = 'drain-secret-123';
const redis = testRedis();
const prefix = uniquePrefix('drain');
let app: FastifyInstance;
let url: string;
let seen: DrainEvent[][] = [];
let apps: ReadonlyMap<string, AppEntry> | undefined;
let failStore = false;
let gate: Promise<void> | undefined;
const keys = redisKeys(prefix);
const metrics = createMetrics(undefined, { defaults: false });

const evaluator: Evaluator = {
  async judge(events) {
    // Read every field the rules engine could, to prove the events are complete.
    seen.push(events.map((e) => ({ app: e.app, id: e.id, receivedAt: e.receivedAt, timestamp: e.timestamp, source: e.source, process: e.process, message: e.message })));
    if (failStore) throw new Error('Connection is closed.');
    if (gate) await gate;
    return { firings: [], count() {} };
  },
};
const sink = { async submit(f: readonly Firing[]): Promise<FiringOutcome[]> { return f.map(() => 'enqueued'); } };

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  const pipeline = new Pipeline({ redis, keys, engine: evaluator, sink, metrics, logger });
  app = await buildApp({
    logger, metrics, redis, drainPassword: PASSWORD,
    getApps: () => apps, ingest: pipeline.ingest, drainDeadlineMs: 300,
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterEach(() => { seen = []; apps = undefined; failStore = false; gate = undefined; });
afterAll(async () => { await app.close(); await cleanupPrefix(redis, prefix); redis.disconnect(); });

describe('POST /drains/:app', () => {
  it('answers 204 and hands on every frame of a real body', async () => {
    const { body, headers, expected } = sampleBody('r14-web');
    const res = await postDrain(url, 'my-app', body, { password: PASSWORD, headers });
    expect(res.status).toBe(204);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.map((e) => e.message)).toEqual(expected.map((e) => e.message));
    expect(seen[0]![1]).toMatchObject({ app: 'my-app', source: 'heroku', process: 'web.1', message: 'Error R14 (Memory quota exceeded)' });
    // Ids count from the end of the frame, so a retry that gains an L10 line in front keeps them.
    expect(seen[0]![1]!.id).toBe(`${headers['Logplex-Drain-Token']}:${headers['Logplex-Frame-Id']}:2`);
  });

  it('401 without or with a wrong password, any user name accepted', async () => {
    const body = frame(drainLine('heroku', 'web.1', 'x'));
    expect((await postDrain(url, 'my-app', body, { password: 'wrong-password' })).status).toBe(401);
    const none = await fetch(`${url}/drains/my-app`, { method: 'POST', headers: { 'Content-Type': 'application/logplex-1' }, body: new Uint8Array(body) });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
    const other = await fetch(`${url}/drains/my-app`, { method: 'POST', headers: { 'Content-Type': 'application/logplex-1', Authorization: 'Basic ' + Buffer.from(`heroku:${PASSWORD}`).toString('base64') }, body: new Uint8Array(body) });
    expect(other.status).toBe(204);
    expect(seen).toHaveLength(1);
  });

  it('415 for another content type, 413 over 1 MiB, before any processing', async () => {
    const body = frame(drainLine('heroku', 'web.1', 'x'));
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, contentType: 'application/json' })).status).toBe(415);
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, contentType: 'text/plain' })).status).toBe(415);
    const big = Buffer.alloc(1024 * 1024 + 1, 'a');
    expect((await postDrain(url, 'my-app', big, { password: PASSWORD })).status).toBe(413);
    expect(seen).toHaveLength(0);
  });

  it('404 for an app not listed, a bad app name, or a drain token not pinned', async () => {
    apps = new Map([['listed-app', { name: 'listed-app', drainTokens: ['d.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc'] }], ['open-app', { name: 'open-app', drainTokens: [] }]]);
    const body = frame(drainLine('heroku', 'web.1', 'x'));
    expect((await postDrain(url, 'other-app', body, { password: PASSWORD })).status).toBe(404);
    expect((await postDrain(url, 'Bad_App', body, { password: PASSWORD })).status).toBe(404);
    expect((await postDrain(url, 'listed-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': 'd.00000000-0000-0000-0000-000000000000' } })).status).toBe(404);
    expect((await postDrain(url, 'listed-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': 'd.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc' } })).status).toBe(204);
    expect((await postDrain(url, 'open-app', body, { password: PASSWORD })).status).toBe(204);
    expect(seen).toHaveLength(2);
  });

  it('a retried frame counts once: three deliveries, the lines counted once, the frame marked done', async () => {
    const { body, headers } = sampleBody('mixed-100');
    const frameId = 'A'.repeat(24) + Date.now().toString(16).toUpperCase().slice(-8);
    const h = { ...headers, 'Logplex-Frame-Id': frameId };
    const before = (await metrics.linesTotal.get()).values.reduce((a, v) => a + v.value, 0);
    for (let i = 0; i < 3; i++) expect((await postDrain(url, 'my-app', body, { password: PASSWORD, headers: h })).status).toBe(204);
    // Once the first delivery is done, a retry is skipped whole: not even judged again (a delivery
    // that failed half-way is judged again, idempotently: test/server/pipeline.test.ts).
    expect(seen).toHaveLength(1);
    expect(await redis.zscore(keys.recentFrames('my-app', headers['Logplex-Drain-Token'] ?? ''), frameId)).not.toBeNull();
    const after = (await metrics.linesTotal.get()).values.reduce((a, v) => a + v.value, 0);
    expect(after - before).toBe(100);
  });

  it('malformed frames are skipped and counted, never a 4xx; a count mismatch is counted', async () => {
    const { body, headers } = sampleBody('malformed/count-mismatch');
    const mismatchBefore = (await metrics.logplexCountMismatchTotal.get()).values[0]?.value ?? 0;
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, headers })).status).toBe(204);
    expect(seen[0]).toHaveLength(5);
    expect((await metrics.logplexCountMismatchTotal.get()).values[0]?.value).toBe(mismatchBefore + 1);
    const garbage = sampleBody('malformed/garbage');
    expect((await postDrain(url, 'my-app', garbage.body, { password: PASSWORD, headers: garbage.headers })).status).toBe(204);
    const invalid = await metrics.framesInvalidTotal.get();
    expect(invalid.values.find((v) => v.labels.reason === 'no-length')?.value).toBeGreaterThan(0);
  });

  it('503 when the firings cannot be stored, and within the deadline when storing hangs; a retry after the held attempt completed is skipped', async () => {
    const body = frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)'));
    const headers = { 'Logplex-Frame-Id': 'F'.repeat(20) + Date.now().toString(16).toUpperCase().slice(-8) };
    failStore = true;
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, headers })).status).toBe(503);
    failStore = false;
    let release!: () => void;
    gate = new Promise<void>((r) => { release = r; });
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, headers })).status).toBe(503);
    gate = undefined;
    release();
    // The held attempt completes after its 503 and marks the frame processed: the retry is skipped.
    const done = async () => (await redis.zscore(keys.recentFrames('my-app', ''), headers['Logplex-Frame-Id'])) !== null;
    for (let i = 0; i < 100 && !(await done()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await done()).toBe(true);
    const lines = async () => (await metrics.linesTotal.get()).values.reduce((a, v) => a + v.value, 0);
    const before = await lines();
    const judged = seen.length;
    expect((await postDrain(url, 'my-app', body, { password: PASSWORD, headers })).status).toBe(204);
    expect(await lines()).toBe(before);
    // Skipped whole: not even judged again.
    expect(seen).toHaveLength(judged);
  });
});

describe('health and metrics', () => {
  it('/healthz and /readyz answer 200 with Redis up', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('/metrics exposes the SPEC §7 names in Prometheus text format', async () => {
    await postDrain(url, 'my-app', frame(drainLine('heroku', 'web.1', 'x')), { password: PASSWORD });
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const name of ['mallet_lines_total', 'mallet_frames_invalid_total', 'mallet_drain_requests_total', 'mallet_drain_request_duration_seconds', 'mallet_rule_matches_total', 'mallet_firings_total', 'mallet_actions_total', 'mallet_trigger_latency_seconds']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/mallet_drain_requests_total\{status="204"\} \d+/);
    expect(text).toMatch(/mallet_lines_total\{app="my-app",source="heroku"\} \d+/);
  });
});
