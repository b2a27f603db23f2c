import { alertContext } from '../../src/server/alertProviders.js';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { Pipeline, type Evaluator } from '../../src/server/pipeline.js';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { genericProvider, logentriesProvider, papertrailProvider } from '../../src/ingest/alerts/providers.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/** Alert webhooks (SPEC §3) over a real socket; nonces in real Redis. */
const redis = testRedis();
const prefix = uniquePrefix('alerts');
const keys = redisKeys(prefix);
let app: FastifyInstance;
let url: string;
let seen: Array<{ source: string; process: string; message: string }> = [];
const LE_USER = 'greenish-yellow';
const LE_PASSWORD = 'le-shared-secret';
const PT_TOKEN = 'papertrail-url-secret';
const SECRET = 'generic-hmac-secret';

const evaluator: Evaluator = {
  async judge(events) {
    seen.push(...events.map((e) => ({ source: e.source, process: e.process, message: e.message })));
    return { firings: [], count() {} };
  },
};

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const pipeline = new Pipeline({ redis, keys, engine: evaluator, sink: { submit: async () => [] }, metrics, logger });
  app = await buildApp({
    logger, metrics, redis, drainPassword: 'unused-password', getApps: () => undefined, ingest: pipeline.ingest,
    alertProviders: new Map([
      ['logentries', logentriesProvider(LE_USER, LE_PASSWORD)],
      ['papertrail', papertrailProvider(PT_TOKEN)],
      ['generic', genericProvider(SECRET)],
    ]),
    alertContext: alertContext(redis, keys),
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterEach(() => { seen = []; });
afterAll(async () => { await app.close(); await cleanupPrefix(redis, prefix); redis.disconnect(); });

function form(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

function leRequest(body: string, opts: { date?: Date; nonce?: string; password?: string; user?: string } = {}) {
  const contentType = 'application/x-www-form-urlencoded';
  const date = (opts.date ?? new Date()).toUTCString();
  const nonce = opts.nonce ?? randomBytes(12).toString('base64url');
  const path = '/alerts/logentries/my-app';
  const canonical = ['POST', contentType, createHash('md5').update(body).digest('base64'), date, path, nonce].join('\n');
  const sig = createHmac('sha1', opts.password ?? LE_PASSWORD).update(canonical).digest('base64');
  return fetch(url + path, { method: 'POST', headers: { 'Content-Type': contentType, Date: date, 'X-Le-Nonce': nonce, Authorization: `LE ${opts.user ?? LE_USER}:${sig}` }, body });
}

describe('POST /alerts/logentries/:app', () => {
  const syslogLine = '299 <45>1 2015-10-14T19:54:02.341207+00:00 d.7f0a1c02-1f5c-4b55-8d0c-0c9d1a2b3c4d heroku web.1 - - Error R14 (Memory quota exceeded)\n';
  const body = form({ alert: { name: 'R14' }, event: { t: 1444852442341, s: 1, m: syslogLine } });

  it('accepts a signed alert and reads the syslog line it carries', async () => {
    const res = await leRequest(body, { nonce: 'nonce-' + randomBytes(6).toString('hex') });
    expect(res.status).toBe(200);
    expect(seen).toEqual([{ source: 'heroku', process: 'web.1', message: 'Error R14 (Memory quota exceeded)' }]);
  });

  it('refuses a bad signature, a stale Date and a replayed nonce', async () => {
    expect((await leRequest(body, { password: 'wrong' })).status).toBe(401);
    expect((await leRequest(body, { user: 'someone-else' })).status).toBe(401);
    expect((await leRequest(body, { date: new Date(Date.now() - 3_600_000) })).status).toBe(401);
    expect((await leRequest(body, { date: new Date(Date.now() + 3_600_000) })).status).toBe(401);
    const nonce = 'replay-' + randomBytes(6).toString('hex');
    const other = form({ event: { m: '2024-01-01T00:00:00+00:00 heroku[worker.2]: Error R14 (Memory quota exceeded)' } });
    expect((await leRequest(other, { nonce })).status).toBe(200);
    expect((await leRequest(other, { nonce })).status).toBe(401);
    expect(seen).toEqual([{ source: 'heroku', process: 'worker.2', message: 'Error R14 (Memory quota exceeded)' }]);
  });
});

describe('POST /alerts/papertrail/:app', () => {
  const payload = { events: [
    { id: 7711561783320576, received_at: '2024-01-08T10:55:11-08:00', program: 'heroku/web.3', message: 'Error R14 (Memory quota exceeded)' },
    { id: 7711561783320577, program: 'app/web.3', message: 'Error R14 (Memory quota exceeded)' },
    { id: 7711561783320578, program: 'CROND', message: 'x' },
  ], saved_search: { id: 42, name: 'R14' }, max_id: '7711561783320578', min_id: '7711561783320576' };

  it('needs the secret token; keeps heroku/app/unknown origins apart', async () => {
    const post = (token: string) => fetch(`${url}/alerts/papertrail/my-app?token=${token}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form(payload) });
    expect((await post('nope')).status).toBe(401);
    expect(seen).toHaveLength(0);
    expect((await post(PT_TOKEN)).status).toBe(200);
    expect(seen.map((e) => `${e.source}/${e.process}`)).toEqual(['heroku/web.3', 'app/web.3', 'unknown/unknown']);
  });
});

describe('POST /alerts/generic/:app', () => {
  it('verifies the HMAC-SHA256 of the raw body', async () => {
    const body = JSON.stringify({ events: [{ source: 'heroku', process: 'worker.1', message: 'Error R15 (Memory quota vastly exceeded)' }, '2024-01-01T00:00:00+00:00 app[web.1]: hello'] });
    const sign = (b: string, s = SECRET) => 'sha256=' + createHmac('sha256', s).update(b).digest('hex');
    const post = (sig: string) => fetch(`${url}/alerts/generic/my-app`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Mallet-Signature': sig }, body });
    expect((await post(sign(body, 'wrong'))).status).toBe(401);
    expect((await post('sha256=zz')).status).toBe(401);
    expect((await post(sign(body))).status).toBe(200);
    expect(seen).toEqual([
      { source: 'heroku', process: 'worker.1', message: 'Error R15 (Memory quota vastly exceeded)' },
      { source: 'app', process: 'web.1', message: 'hello' },
    ]);
  });

  it('the same alert for two apps reaches both (de-duplication is per app)', async () => {
    const body = JSON.stringify({ events: [{ source: 'heroku', process: 'web.4', message: 'Error R14 (Memory quota exceeded)' }] });
    const sig = 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');
    const post = (app: string) => fetch(`${url}/alerts/generic/${app}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Mallet-Signature': sig }, body });
    expect(await (await post('app-a')).json()).toMatchObject({ duplicate: false, lines: 1 });
    expect(await (await post('app-b')).json()).toMatchObject({ duplicate: false, lines: 1 });
    // The same delivery again (a webhook retry) is skipped.
    expect(await (await post('app-a')).json()).toMatchObject({ duplicate: true });
  });

  it('checks credentials before anything else: no body is a 401 (not a 500), and an unsigned caller cannot probe app names', async () => {
    const empty = await fetch(`${url}/alerts/generic/my-app`, { method: 'POST', headers: { 'X-Mallet-Signature': 'sha256=' + '0'.repeat(64) } });
    expect(empty.status).toBe(401);
    const unsigned = await fetch(`${url}/alerts/generic/Not_An_App`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    const body = '{"events":[]}';
    const signed = await fetch(`${url}/alerts/generic/Not_An_App`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Mallet-Signature': 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex') }, body });
    expect(signed.status).toBe(404);
  });

  it('answers 404 for a provider that is off', async () => {
    expect((await fetch(`${url}/alerts/other/my-app`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status).toBe(404);
  });
});
