/**
 * The pipeline's own cost per body, without HTTP: corpus bodies through the rules engine (the
 * example rules), the dyno observer and the frame de-dup on real Redis, one after another, firings
 * to a sink that only answers. Prints CPU µs, Redis commands and bytes sent to Redis per body
 * (the socket's own count: a shared Redis's total_net_input_bytes counts everyone's traffic). Steadier than a load test on a busy
 * machine, and deterministic enough to count instructions under `valgrind --tool=callgrind`
 * (run it for two body counts and take the difference, which removes start-up).
 *
 *   node --import tsx bench/support/pipelineCost.ts BODIES [REDIS_URL]
 *
 * On a private redis-server only (bodyPartTimes.ts): BODY_PART_TIMES=1 times each part of the
 * body script inside Redis, BODY_PART_CALLS=1 counts its redis.calls per part and command,
 * BODY_PART_SKIP=<codes> runs the script without those parts (their cost by difference, e.g.
 * in instructions with the redis-server under callgrind).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ensureCorpus } from '../corpus.js';
import { loadRules } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { defineCountingBody, defineTimedBody, partCalls, partTimes, skippingBodyLua } from './bodyPartTimes.js';
import { cleanupPrefix } from '../../test/support/redis.js';

const bodies = Number(process.argv[2] ?? 1000);
const redis = new Redis(process.argv[3] ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
let sent = 0;
const send = redis.sendCommand.bind(redis);
redis.sendCommand = ((...a: unknown[]) => { sent++; return (send as (...x: unknown[]) => unknown)(...a); }) as Redis['sendCommand'];
const corpus = await ensureCorpus(100_000);
const bytes = readFileSync(corpus.file);
const loaded = await loadRules(new URL('../../config/rules.example.yml', import.meta.url).pathname, process.env, { allowUnsetEnv: true });
if (!loaded.ok) throw new Error('example rules do not load');
const prefix = `mallet-cost-${process.pid}`;
const keys = redisKeys(prefix);
// BODY_PART_TIMES=1: each part of the body script timed inside Redis (measurement only; private Redis).
const timesKey = `${prefix}-part-times`;
if (process.env.BODY_PART_TIMES) defineTimedBody(redis, timesKey);
// BODY_PART_CALLS=1: the script's redis.calls counted per part and command instead.
else if (process.env.BODY_PART_CALLS) defineCountingBody(redis, timesKey);
// BODY_PART_SKIP=<code>: that kind of part not run (b, p, v, t, r, d, l), for a difference in cost.
else if (process.env.BODY_PART_SKIP) redis.defineCommand('malletBody', { lua: skippingBodyLua(process.env.BODY_PART_SKIP) });
const metrics = createMetrics(undefined, { defaults: false });
const logger = pino({ level: 'silent' });
// Wired as service.ts wires them: the observer writes the dyno lifecycle, the rules read it.
const life = process.env.COST_NO_LIFE ? undefined : new RedisLifeStore(redis, keys);
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet, ...(life ? { life } : {}) });
const pipeline = new Pipeline({ redis, keys, engine, sink: { submit: async (f) => f.map(() => 'enqueued' as const) }, observers: [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)], metrics, logger });
const run = Date.now().toString(16);
const socket = () => (redis as unknown as { stream: { bytesWritten: number } }).stream.bytesWritten;
const t0 = process.cpuUsage();
const sent0 = sent;
const bytes0 = socket();
for (let i = 0; i < bodies; i++) {
  const b = corpus.index[i % corpus.index.length]!;
  const body = bytes.subarray(b.offset, b.offset + b.length);
  await pipeline.ingest({ app: 'cost-app', drainToken: 'd.1', frameId: `${run}-${i}`, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
}
const t = process.cpuUsage(t0);
console.log(JSON.stringify({ bodies, cpuUsPerBody: (t.user + t.system) / bodies, redisCommandsPerBody: (sent - sent0) / bodies, redisBytesPerBody: Math.round((socket() - bytes0) / bodies) }));
if (process.env.BODY_PART_TIMES) console.log(JSON.stringify(await partTimes(redis, timesKey)));
else if (process.env.BODY_PART_CALLS) console.log(JSON.stringify(await partCalls(redis, timesKey, bodies)));
await cleanupPrefix(redis, prefix);
redis.disconnect();
