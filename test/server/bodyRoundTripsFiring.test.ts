import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { ActionQueue } from '../../src/actions/queue.js';
import { SilenceCache } from '../../src/console/silenceCache.js';
import { SilenceStore } from '../../src/console/silenceStore.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { DEFAULT_LIMITS } from '../../src/rules/RuleSet.js';
import { createMetrics } from '../../src/metrics.js';
import { compiledRules, realPipeline } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';
import { eventually } from '../support/eventually.js';

/**
 * The round trips of a body that fires, with the real action queue as the service wires it, on
 * every connection: the body script, which admits its firings too (src/actions/bodyAdmission.ts);
 * every job's add with its read-back in one pipeline; the observers' writes told the firings
 * with the frame mark in one call. The silences come from memory (silenceCache.ts). Before:
 * four (the admissions a round trip of their own, one script call per firing), and before that
 * seven (the silences read, the add and its read-back apart, the observers and the mark apart).
 * A round trip here is a send made while none of the body's commands is in flight.
 */
const admin = testRedis();
const prefix = uniquePrefix('trips-fire');
const queuePrefix = `${prefix}-bull`;
const logger = pino({ level: 'silent' });

let inFlight = 0;
let trips = 0;
let sent: string[] = [];
/** The commands of each round trip. */
let waves: string[][] = [];
let counting = false;
const send = Redis.prototype.sendCommand;
beforeAll(() => {
  Redis.prototype.sendCommand = function (this: Redis, command: Parameters<Redis['sendCommand']>[0], ...rest: unknown[]) {
    const r = (send as (...a: unknown[]) => unknown).call(this, command, ...rest);
    if (counting && command.name !== 'info') {
      if (inFlight === 0) { trips++; waves.push([]); }
      inFlight++;
      sent.push(command.name);
      waves.at(-1)!.push(command.name);
      const settle = () => { inFlight--; };
      command.promise.then(settle, settle);
    }
    return r;
  } as Redis['sendCommand'];
});
const closers: Array<() => unknown> = [];
afterAll(async () => {
  Redis.prototype.sendCommand = send;
  for (const c of closers.reverse()) await c();
  await cleanupPrefix(admin, prefix, queuePrefix);
  admin.disconnect();
});

const RULES = compiledRules(`version: 1
rules:
  - name: once
    match: { process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
  - name: also
    match: { process: "web.2", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`);

async function setup() {
  const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  await new Promise((r) => redis.once('ready', r));
  let store!: RedisDynoStore;
  let silences!: SilenceCache;
  let queue!: ActionQueue;
  const built = realPipeline({
    redis, prefix, ruleSet: RULES,
    sink: { submit: (f, a) => queue.submit(f, a), admission: () => queue.admission() },
    observers: (k) => {
      store = new RedisDynoStore(redis, k);
      const silenceStore = new SilenceStore(redis, k, Date.now);
      silences = new SilenceCache(() => silenceStore.active(), { redis, key: k.silences(), clock: Date.now, logger });
      queue = new ActionQueue({ connection: redis, queuePrefix, keys: k, metrics: createMetrics(undefined, { defaults: false }), logger, dryRun: false, getLimits: () => DEFAULT_LIMITS, getSilences: () => silences.active(), silencesInMemory: () => silences.inMemory() });
      return [new DynoObserver(store)];
    },
  });
  closers.push(async () => { await queue.close(); silences.close(); redis.disconnect(); });
  await eventually('the silence cache subscribed', async () => silences.tracking);
  return { ...built, store, queue, silences };
}

const batchOf = (app: string, frameId: string, body: Buffer) => ({ app, drainToken: 'd.1', frameId, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
const r14 = (dyno: string) => drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)');

describe('a body that fires', () => {
  it('three round trips from its arrival to its 204, whatever it fired; its retry is skipped whole in one', async () => {
    const s = await setup();
    // Warm: scripts loaded, the silences read once (so they are in memory), the app's list entry written.
    await s.pipeline.ingest(batchOf('fire-app', 'W1', frame(r14('web.9'))));
    expect(s.silences.inMemory()).toEqual([]);
    for (const [frameId, dynos, firings] of [['F1', ['web.1'], 1], ['F2', ['web.2', 'web.3'], 3]] as const) {
      trips = 0; sent = []; waves = []; counting = true;
      const r = await s.pipeline.ingest(batchOf('fire-app', frameId, frame(...dynos.map(r14))));
      counting = false;
      expect(r).toEqual({ duplicate: false, lines: dynos.length, firings });
      expect(trips).toBe(3);
      // body script with the admissions · adds (addStandardJob) + read-backs · observers + frame mark
      expect(sent.filter((c) => c === 'hget')).toHaveLength(firings);
      expect(sent).toHaveLength(1 + 2 * firings + 1);
      // The jobs are added in the second: from the line to its job, one round trip fewer.
      expect(waves[0]).toEqual(['evalsha']);
      expect(waves[1]!.filter((c) => c === 'evalsha')).toHaveLength(firings);
    }
    // Every firing stored as its job (1 warm-up + 1 + 3), waiting for a worker.
    expect(await admin.llen(`${queuePrefix}:${ACTION_QUEUE}:wait`)).toBe(5);
    expect((await s.store.read('fire-app')).events.filter((e) => e.kind === 'remediation')).toHaveLength(5);
    trips = 0; counting = true;
    expect((await s.pipeline.ingest(batchOf('fire-app', 'F2', frame(r14('web.2'), r14('web.3'))))).duplicate).toBe(true);
    counting = false;
    expect(trips).toBe(1);
  });
});
