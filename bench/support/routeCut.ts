/**
 * One of bench/drain.bench.ts's route cuts alone, in this process, so it can be profiled
 * (`node --cpu-prof --import tsx …`): `bare` (Fastify reading the body, 204), `parse` (mallet's
 * drain route: auth, hooks, metrics, frame and header parse, an ingest that does nothing) or
 * `match` (the same plus the events and the example rules' matching). The load generator runs in
 * its own process (drainLoad.ts, 32 connections); prints req/s and this process's CPU per request.
 * `parse` and `match` apply the service's prefilter while parsing (Pipeline.wants with the example
 * rules and the dyno observer: the lines neither reads are only counted); BENCH_PREFILTER=0 makes
 * every line a message, as before it.
 *
 *   node --import tsx bench/support/routeCut.ts bare|parse|match [SECONDS]
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { buildApp } from '../../src/server/app.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { matchEvent, mayMatch, type RuleMatch } from '../../src/rules/match.js';
import { wantsDynoLine } from '../../src/dynos/dynoLines.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { createMetrics } from '../../src/metrics.js';
import { exampleRulesAndCorpus } from './benchInputs.js';

const here = dirname(fileURLToPath(import.meta.url));
const PASSWORD = 'bench-drain-password';
const mode = process.argv[2] ?? 'match';
const seconds = Number(process.argv[3] ?? 6);
const { rules } = await exampleRulesAndCorpus(20_000);
// Never connected: the cut routes answer before anything reaches Redis.
const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });

function bare() {
  const b = Fastify();
  b.addContentTypeParser('application/logplex-1', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_r, body, done) => done(null, body));
  b.post('/drains/:app', async (_req, reply) => reply.code(204).send());
  return b;
}

/** Pipeline.wants as the service builds it: the engine's (rules, and the dyno lines its lifecycle reads) or the dyno observer's. */
const wants = process.env.BENCH_PREFILTER === '0' ? undefined : (e: DrainEvent) => mayMatch(rules, e) || wantsDynoLine(e);
const app = mode === 'bare' ? bare() : await buildApp({
  logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }), redis, drainPassword: PASSWORD, getApps: () => undefined, wants,
  ingest: mode === 'parse'
    ? async (batch) => ({ duplicate: false, lines: batch.messages.length, firings: 0 })
    : async (batch) => {
      const out: RuleMatch[] = [];
      for (const event of drainEvents(batch)) matchEvent(rules, event, out);
      return { duplicate: false, lines: batch.messages.length, firings: out.length };
    },
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });

function load(durationS: number): Promise<{ rps: number; non2xx: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), url, String(durationS)], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: '32' }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '')); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

await load(2);
const c0 = process.cpuUsage();
const r = await load(seconds);
const used = process.cpuUsage(c0);
console.log(`${mode}: ${r.rps.toFixed(0)} req/s, ${((used.user + used.system) / (r.rps * seconds)).toFixed(1)} µs CPU/req, ${r.non2xx} not 2xx`);
await app.close();
redis.disconnect();
