import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_TIMEOUT_MS } from '../../src/server/app.js';
import { MAX_UNAUTHENTICATED_CONNECTIONS } from '../../src/server/connectionGuard.js';
import type { Service } from '../../src/server/service.js';
import { basic, frame } from '../support/drainClient.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';

/**
 * Issue 8, item 7: no request timeout. Partial bodies, authenticated or not, were held open without
 * limit (200 of them took RSS from 110 to 293 MB), and nothing bounded the unauthenticated
 * connections. Through the running service (real HTTP, real Redis): the server closes a partial
 * request within its bound, at most a fixed number of unauthenticated connections stay open, and
 * /healthz still answers meanwhile.
 */
const PASSWORD = 'drain-secret-timeout';
const redis = testRedis();
const prefix = uniquePrefix('rto');
const queuePrefix = uniquePrefix('rtoq');
let running: Awaited<ReturnType<typeof startTestService>>;
let service: Service;
let port: number;
const opened: Socket[] = [];

beforeAll(async () => {
  const { file, dir } = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key, key: "${prefix}:puma::stop::{{target}}", ttl: 60s }
`);
  running = await startTestService({ redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: file, dir, worker: false, env: { MALLET_DRY_RUN: '1' } });
  service = running.service;
  port = Number(new URL(service.url!).port);
});

afterAll(async () => {
  for (const s of opened) s.destroy();
  await running?.close();
  redis.disconnect();
});

/**
 * Opens a POST of a 1000-byte body and sends only part of it (with `headersOnly`, only part of
 * its headers); resolves when connected.
 */
function partialPost(auth: boolean, headersOnly = false): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      const request = [
        'POST /drains/my-app HTTP/1.1', 'Host: x', 'Content-Type: application/logplex-1', 'Content-Length: 1000',
        ...(auth ? [`Authorization: ${basic(PASSWORD)}`] : []), '', '12 <190>1 2026',
      ].join('\r\n');
      socket.write(headersOnly ? request.slice(0, request.indexOf('Content-Type')) : request);
      resolve({ socket, closed });
    });
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
    socket.on('error', () => {});
    socket.once('error', reject);
    // Read what the server sends, so its close is seen.
    socket.resume();
    opened.push(socket);
  });
}

async function healthz(): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

describe('partial requests are bounded', () => {
  it('closes partial bodies, authenticated and not, within the request timeout; /healthz answers meanwhile', async () => {
    const t0 = Date.now();
    const authed = await partialPost(true);
    const anonymous = await partialPost(false);
    const noHeaders = await partialPost(false, true);
    expect(await healthz()).toBe(200);
    const deadline = new Promise<number>((resolve) => setTimeout(() => resolve(-1), REQUEST_TIMEOUT_MS + 5_000));
    for (const p of [authed, anonymous, noHeaders]) {
      const at = await Promise.race([p.closed, deadline]);
      expect(at, 'closed by the server').toBeGreaterThan(0);
      // Node checks the timeout once a second.
      expect(at - t0).toBeLessThan(REQUEST_TIMEOUT_MS + 2_500);
    }
  }, 30_000);

  it(`keeps at most ${MAX_UNAUTHENTICATED_CONNECTIONS} unauthenticated partial requests open, the oldest giving way; /healthz gets in`, async () => {
    // Partial headers: the server cannot answer them yet (a partial body without credentials is
    // answered 401 and closed at once).
    const flood = [];
    for (let i = 0; i < MAX_UNAUTHENTICATED_CONNECTIONS + 44; i++) flood.push(await partialPost(false, true));
    expect(await healthz()).toBe(200);
    // The 44 oldest were closed for the newcomers (and one more for the /healthz connection).
    await Promise.all(flood.slice(0, 45).map((p) => p.closed));
    expect(flood.slice(45).every((p) => !p.socket.destroyed)).toBe(true);
    // An authenticated drain request gets in and through as well.
    const res = await fetch(`http://127.0.0.1:${port}/drains/my-app`, {
      method: 'POST', headers: { 'Content-Type': 'application/logplex-1', Authorization: basic(PASSWORD) },
      body: new Uint8Array(frame('<190>1 2026-12-01T00:00:00Z host app web.1 - hello\n')),
    });
    expect(res.status).toBe(204);
    for (const p of flood) p.socket.destroy();
  }, 30_000);
});
