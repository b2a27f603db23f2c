import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { ActionQueue } from '../../src/actions/queue.js';
import { readHistory } from '../../src/console/history.js';
import { BodyPrefilter } from '../../src/ingest/bodyPrefilter.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { IngestBatch } from '../../src/ingest/IngestBatch.js';
import { ACTION_QUEUE, redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { ensureCorpus } from '../../bench/corpus.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';

/*
 * The HTTPS drain's prefilter (Pipeline.wants on the drain route, as on the syslog listener): a
 * line no rule and no observer could read is never made a message, only counted. It must change
 * nothing else: the kept lines' event ids, the firings and their jobs, everything stored in Redis
 * (threshold windows, frame marks, dyno records and trends, the lifecycle, the firing history),
 * the metrics, and a retry still skipped whole.
 */

const admin = testRedis();
const prefixes: string[] = [];
afterAll(async () => {
  await cleanupPrefix(admin, ...prefixes);
  admin.disconnect();
});

describe('parseLogplexBody with a prefilter', () => {
  it('makes only the kept lines messages, with their place from the end of the whole body; framing and counts as without', () => {
    const lines = [
      drainLine('heroku', 'router', 'at=info path=/'), drainLine('heroku', 'web.1', 'keep A'), drainLine('app', 'web.1', 'hello'),
      drainLine('app', 'api', 'Release v9'), drainLine('heroku', 'web.2', 'keep B'), drainLine('other', 'x', 'y'), drainLine('heroku', 'web.3', 'nope'),
    ];
    // A stray newline between frames (a warning) and a broken frame at the end (the rest dropped).
    const body = Buffer.concat([frame(...lines.slice(0, 4)), Buffer.from('\n'), frame(...lines.slice(4)), Buffer.from('12 <190>1 abc')]);
    const all = parseLogplexBody(body);
    const keep = Buffer.from('keep');
    const prefilter = new BodyPrefilter((line) => line.messageStartsWith!(keep));
    const some = parseLogplexBody(body, prefilter);
    expect(all.messages).toHaveLength(7);
    expect(some.messages.map((m) => m.message)).toEqual(['keep A', 'keep B']);
    expect(some.linesAfter).toEqual([5, 2]);
    // router and web.3; app web.1 and app[api]; the add-on.
    expect(some.passedOver).toEqual({ heroku: 2, app: 2, other: 1 });
    expect({ errors: some.errors, warnings: some.warnings, droppedFrom: some.droppedFrom }).toEqual({ errors: all.errors, warnings: all.warnings, droppedFrom: all.droppedFrom });
    // The same ids as when every line is a message.
    const ids = (b: Omit<IngestBatch, 'app' | 'drainToken' | 'frameId' | 'dedupe' | 'receivedAt'>) =>
      drainEvents({ app: 'a', drainToken: 'd.1', frameId: 'F', dedupe: true, receivedAt: 0, ...b }).map((e) => `${e.id} ${e.message}`);
    expect(ids(some)).toEqual(ids(all).filter((s) => s.includes('keep')));
    // Reused for the next body: nothing of the last one carries over.
    const next = parseLogplexBody(frame(drainLine('heroku', 'web.1', 'keep C'), drainLine('heroku', 'router', 'x')), prefilter);
    expect(next.linesAfter).toEqual([1]);
    expect(next.passedOver).toEqual({ heroku: 1, app: 0, other: 0 });
    expect(some.linesAfter).toEqual([5, 2]);
    const none = parseLogplexBody(frame(drainLine('heroku', 'web.1', 'keep D')), prefilter);
    expect(none.passedOver).toBeUndefined();
    expect(none.linesAfter).toEqual([0]);
    // A retry that gains an L10 notice in front (logplex recomputes it per send) keeps the ids.
    const l10 = frame(drainLine('heroku', 'logplex', 'Error L10 (output buffer overflow): 3 messages dropped since 2024-11-14T03:12:00+00:00.'));
    const retry = parseLogplexBody(Buffer.concat([l10, body]), prefilter);
    expect(ids(retry)).toEqual(ids(some));
  });
});

describe('the service\'s prefilter on the HTTPS drain over the benchmark corpus', () => {
  it('changes no event id, firing, job, stored record, history entry, trend or metric, and most lines become no message', async () => {
    const corpus = await ensureCorpus(50_000);
    const data = readFileSync(corpus.file);
    const rules = parse(readFileSync(new URL('../../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; apps?: unknown; limits?: unknown };
    delete rules.apps;
    // The storm guard opened up, so that every firing the rules decide is a job.
    rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
    const loaded = loadRulesText(stringify(rules), 'rules.yml', { HEROKU_API_TOKEN: 'x' });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const ruleSet = loaded.ruleSet;
    const APP = 'corpus-app';
    const PASSWORD = 'pass-over-secret';
    const logger = pino({ level: 'silent' });

    async function run(filter: boolean) {
      const prefix = uniquePrefix(filter ? 'skip-on' : 'skip-off');
      const queuePrefix = `${prefix}-bull`;
      prefixes.push(prefix, queuePrefix);
      const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
      const keys = redisKeys(prefix);
      const metrics = createMetrics(undefined, { defaults: false });
      // Each body arrives 4 s after the last (the corpus spans half an hour of log): the same
      // times in both runs, for the rules, the queue's admissions and the history.
      let now = Date.UTC(2024, 10, 14, 0, 0, 0);
      const clock = () => now;
      const life = new RedisLifeStore(redis, keys);
      const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet, life });
      const dynos = new RedisDynoStore(redis, keys);
      const queue = new ActionQueue({ connection: redis, queuePrefix, keys, metrics, logger, dryRun: true, getLimits: () => ruleSet.limits, clock });
      const firings: string[] = [];
      const pipeline = new Pipeline({
        redis, keys, engine, metrics, logger, observers: [new DynoObserver(dynos, undefined, life)],
        sink: { submit: (fs) => { for (const f of fs) firings.push(JSON.stringify(f)); return queue.submit(fs); } },
      });
      let made = 0;
      const ids: string[] = [];
      const app = await buildApp({
        logger, metrics, redis, drainPassword: PASSWORD, getApps: () => undefined, clock,
        ...(filter ? { wants: pipeline.wants } : {}),
        ingest: (batch) => {
          made += batch.messages.length;
          // What the pipeline reads of them: drainEvents binds each message to this batch once.
          for (const e of drainEvents(batch)) ids.push(`${e.id} ${e.process} ${e.message}`);
          return pipeline.ingest(batch);
        },
      });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      const post = (i: number) => {
        const b = corpus.index[i]!;
        return postDrain(url, APP, data.subarray(b.offset, b.offset + b.length), {
          password: PASSWORD, headers: { 'Logplex-Drain-Token': 'd.corpus', 'Logplex-Frame-Id': b.frameId, 'Logplex-Msg-Count': String(b.msgCount) },
        });
      };
      for (let i = 0; i < corpus.index.length; i++) {
        now += 4000;
        expect((await post(i)).status).toBe(204);
      }
      // Retries of recent frames already done (recentFrames.ts): skipped whole, nothing more
      // stored or counted.
      const madeBefore = made;
      const n = corpus.index.length;
      for (const i of [n - 1, n - 3, n - 20]) expect((await post(i)).status).toBe(204);
      const retriedMessages = made - madeBefore;
      await app.close();

      const metricValues = (await metrics.registry.getMetricsAsJSON())
        // Request durations are wall time.
        .filter((m) => m.name !== 'mallet_drain_request_duration_seconds' && m.name !== 'mallet_trigger_latency_seconds')
        .flatMap((m) => m.values.map((v) => `${m.name}${JSON.stringify(v.labels)} ${v.value}`)).sort();
      const history = (await readHistory(redis, keys, { app: APP, limit: 500 }, [APP])).records.map(({ id: _entryId, ...r }) => JSON.stringify(r));
      const jobs = (await admin.lrange(`${queuePrefix}:${ACTION_QUEUE}:wait`, 0, -1)).sort();
      const stored = await dumpPrefix(prefix);
      const dynoRead = JSON.stringify(await dynos.read(APP));
      await queue.close();
      redis.disconnect();
      return { made, ids, firings, metricValues, history, jobs, stored, dynoRead, retriedMessages };
    }

    const all = await run(false);
    const skipping = await run(true);
    const lines = corpus.index.reduce((n, b) => n + b.msgCount, 0);
    expect(all.made).toBe(lines + all.retriedMessages);
    // Something to compare: firings, history, dyno records.
    expect(all.firings.length).toBeGreaterThan(0);
    expect(all.history.length).toBeGreaterThan(0);
    expect(all.jobs.length).toBeGreaterThan(0);
    expect(JSON.parse(all.dynoRead).events.length).toBeGreaterThan(0);
    expect(Object.keys(all.stored).length).toBeGreaterThan(all.jobs.length);

    // Every kept line has the id it has when every line is a message.
    const allIds = new Set(all.ids);
    expect(skipping.ids.filter((s) => !allIds.has(s))).toEqual([]);
    expect(skipping.firings).toEqual(all.firings);
    expect(skipping.jobs).toEqual(all.jobs);
    expect(skipping.history).toEqual(all.history);
    expect(skipping.dynoRead).toEqual(all.dynoRead);
    expect(skipping.stored).toEqual(all.stored);
    expect(skipping.metricValues).toEqual(all.metricValues);
    // Each line counted once, retries not at all.
    const counted = all.metricValues.filter((m) => m.startsWith('mallet_lines_total')).reduce((n, m) => n + Number(m.split(' ').at(-1)), 0);
    expect(counted).toBe(lines);
    // Logplex-Msg-Count is checked against every line read, passed over or not.
    expect(skipping.metricValues.some((m) => m.startsWith('mallet_logplex_msg_count_mismatch_total') && !m.endsWith(' 0'))).toBe(false);
    // What it is for: most lines (router and app output) never become messages.
    expect(skipping.made).toBeLessThan(lines * 0.2);
  }, 240_000);
});

/** Every key under `prefix` (the prefix cut off) with its contents; stream entry ids left out (wall time). */
async function dumpPrefix(prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let cursor = '0';
  // Stream entry ids are wall time (XADD *); they are compared through the history, not here.
  const strip = (s: string) => s.split(prefix).join('<p>').replace(/\b\d{13}-\d+\b/g, '<entry>');
  // An admission holds the random token of the submission that made it (queue.ts).
  const submission = (s: string) => s.replace(/\|[0-9a-f]{16}$/, '|<submission>');
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const type = await admin.type(key);
      let value: unknown;
      if (type === 'string') value = submission((await admin.get(key)) ?? '');
      else if (type === 'hash') value = Object.entries(await admin.hgetall(key)).sort();
      else if (type === 'set') value = (await admin.smembers(key)).sort();
      else if (type === 'zset') value = await admin.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'list') value = await admin.lrange(key, 0, -1);
      else if (type === 'stream') value = (await admin.xrange(key, '-', '+')).map(([, fields]) => fields);
      else value = type;
      out[strip(key)] = JSON.parse(strip(JSON.stringify(value)));
    }
  } while (cursor !== '0');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
