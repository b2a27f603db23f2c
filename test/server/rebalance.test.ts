import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { Pipeline, type Evaluator } from '../../src/server/pipeline.js';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { basic, drainLine, frame } from '../support/drainClient.js';

/**
 * Rebalancing: logplex holds one keep-alive connection per drain for hours; mallet answers
 * `Connection: close` after N requests or once the connection is M old, and the client's next
 * batch comes on a new connection (through the load balancer, to any replica).
 */
const PASSWORD = 'rebalance-secret-1';
const redis = testRedis();
const prefix = uniquePrefix('rebalance');
const apps: FastifyInstance[] = [];
afterAll(async () => { for (const a of apps) await a.close(); await cleanupPrefix(redis, prefix); redis.disconnect(); });

async function start(opts: { connectionMaxRequests?: number; connectionMaxAgeMs?: number; clock?: () => number }): Promise<string> {
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const engine: Evaluator = { async judge() { return { firings: [], count() {} }; } };
  const sink = { async submit() { return []; } };
  const pipeline = new Pipeline({ redis, keys: redisKeys(prefix), engine, sink, metrics, logger });
  const app = await buildApp({ logger, metrics, redis, drainPassword: PASSWORD, getApps: () => undefined, ingest: pipeline.ingest, ...opts });
  apps.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/** One drain POST on a keep-alive agent; reports the client port (which connection) and the Connection header. */
function post(url: string, agent: Agent, n: number): Promise<{ status: number; port: number; connection: string | undefined }> {
  const body = frame(drainLine('heroku', 'router', `at=info n=${n}`));
  return new Promise((resolve, reject) => {
    const req = request(`${url}/drains/my-app`, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/logplex-1', Authorization: basic(PASSWORD), 'Logplex-Frame-Id': `${prefix}-${n}`, 'Content-Length': body.length },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, port: req.socket!.localPort!, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('connection rebalancing', () => {
  it('closes a connection after N requests; the client reconnects and every request is answered', async () => {
    const url = await start({ connectionMaxRequests: 5 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await post(url, agent, i));
    agent.destroy();
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(204));
    expect(answers.map((a) => a.connection)).toEqual(Array.from({ length: 12 }, (_, i) => (i % 5 === 4 ? 'close' : 'keep-alive')));
    // Three connections: requests 1-5, 6-10, 11-12.
    const ports = answers.map((a) => a.port);
    expect(new Set(ports).size).toBe(3);
    expect(new Set(ports.slice(0, 5)).size).toBe(1);
    expect(new Set(ports.slice(5, 10)).size).toBe(1);
    expect(ports[4]).not.toBe(ports[5]);
  });

  it('closes a long-lived connection once it is older than the maximum age', async () => {
    let now = 1_000_000;
    const url = await start({ connectionMaxAgeMs: 300_000, clock: () => now });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(url, agent, 100);
    now += 299_000;
    const young = await post(url, agent, 101);
    now += 2_000;
    const old = await post(url, agent, 102);
    const next = await post(url, agent, 103);
    agent.destroy();
    expect([first, young, old, next].map((a) => a.status)).toEqual([204, 204, 204, 204]);
    expect(young.port).toBe(first.port);
    expect(young.connection).toBe('keep-alive');
    expect(old.connection).toBe('close');
    expect(old.port).toBe(first.port);
    expect(next.port).not.toBe(first.port);
    expect(next.connection).toBe('keep-alive');
  });

  it('a client that ignores Connection: close gets its socket closed, never a 503', async () => {
    const url = await start({ connectionMaxRequests: 3 });
    const body = frame(drainLine('heroku', 'router', 'at=info pipelined'));
    const one = (n: number) => `POST /drains/my-app HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(PASSWORD)}\r\nContent-Type: application/logplex-1\r\nLogplex-Frame-Id: ${prefix}-p${n}\r\nContent-Length: ${body.length}\r\n\r\n${body.toString()}`;
    // Five requests written at once on one connection, as a client deaf to the header would.
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      let out = '';
      socket.on('data', (d) => { out += d; });
      socket.on('close', () => resolve(out));
      socket.write([0, 1, 2, 3, 4].map(one).join(''));
    });
    const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([204, 204, 204]);
    expect(answer).toMatch(/connection: close/i);
  });

  it('keeps connections open without limit when both bounds are 0', async () => {
    const url = await start({ connectionMaxRequests: 0, connectionMaxAgeMs: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const answers = [];
    for (let i = 200; i < 210; i++) answers.push(await post(url, agent, i));
    agent.destroy();
    expect(new Set(answers.map((a) => a.port)).size).toBe(1);
  });
});
