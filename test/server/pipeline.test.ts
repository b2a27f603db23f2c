import { afterAll, describe, expect, it } from 'vitest';
import type { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { Firing, FiringSink } from '../../src/rules/Firing.js';
import { compiledRules, realPipeline, TWICE_AND_ONCE } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';

/** The pipeline with the real rules engine on real Redis: what a logplex retry may and may not change. */
const redis = testRedis();
const prefix = uniquePrefix('pipe');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const ruleSet = compiledRules(TWICE_AND_ONCE);

/** The pipeline with the real engine on real Redis, storing firings in `sink`. */
const pipelineTo = (sink: FiringSink) => realPipeline({ redis, prefix, ruleSet, sink });

describe('a logplex retry that gains an L10 line in front', () => {
  it('counts each line once: the retry does not reach a threshold the first delivery did not', async () => {
    const submitted: Firing[][] = [];
    let failNext = true;
    const sink = {
      async submit(f: readonly Firing[]) {
        if (failNext) { failNext = false; throw new Error('Redis went away'); }
        submitted.push([...f]);
        return f.map(() => 'enqueued' as const);
      },
    };
    const { pipeline, metrics } = pipelineTo(sink);
    const r14 = 'Error R14 (Memory quota exceeded)';
    const lines = [drainLine('heroku', 'web.1', r14), drainLine('heroku', 'web.2', r14)];
    const batch = (body: Buffer) => ({ app: 'my-app', drainToken: 'd.1', frameId: 'ABC123', dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });

    // First delivery: the votes are stored, then storing the firing fails (the drain answers 503).
    await expect(pipeline.ingest(batch(frame(...lines)))).rejects.toThrow(/went away/);
    // Logplex retries the frame with an overflow notice in front (../shared/docs/heroku-drain-protocol.md §1.4).
    const l10 = '<172>1 2024-11-14T00:00:00+00:00 host heroku logplex - Error L10 (output buffer overflow): 3 messages dropped since 2024-11-13T23:59:00+00:00.';
    const retry = Buffer.concat([frame(l10), frame(...lines)]);
    const result = await pipeline.ingest(batch(retry));
    expect(result.duplicate).toBe(false);
    expect(submitted.flat().map((f) => `${f.rule}/${f.target}`)).toEqual(['once/web.2']);
    // The failed delivery was not counted, the retry once.
    expect(await matchesOf(metrics)).toEqual({ twice: 1, once: 1 });
    // A third delivery of the same frame is a duplicate: nothing more is counted.
    expect((await pipeline.ingest(batch(retry))).duplicate).toBe(true);
    expect(await matchesOf(metrics)).toEqual({ twice: 1, once: 1 });
  });
});

describe('a delivery already done', () => {
  it('is skipped whole, even after the threshold records of its lines have expired', async () => {
    const submitted: Firing[] = [];
    const { pipeline, keys } = pipelineTo({ async submit(f) { submitted.push(...f); return f.map(() => 'enqueued' as const); } });
    const body = frame(drainLine('heroku', 'web.2', 'Error R14 (Memory quota exceeded)'));
    const batch = () => ({ app: 'other-app', drainToken: 'd.2', frameId: 'DONE1', dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
    expect((await pipeline.ingest(batch())).firings).toBe(1);
    // Window and cooldown over (their keys expire); the done-marker lives a day.
    const { firedBy, cooldown } = keys.threshold('once', 'other-app', 'web.2');
    await redis.del(firedBy, cooldown);
    expect(await pipeline.ingest(batch())).toEqual({ duplicate: true, lines: 0, firings: 0 });
    expect(submitted).toHaveLength(1);
  });
});

describe('two deliveries of one frame in flight at once', () => {
  it('both are judged (idempotently), and only the one that marks the frame done first counts', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const submitted: string[] = [];
    const { pipeline, metrics } = pipelineTo({ async submit(f) { await gate; submitted.push(...f.map((x) => x.id)); return f.map(() => 'enqueued' as const); } });
    const body = frame(drainLine('heroku', 'web.2', 'Error R14 (Memory quota exceeded)'), drainLine('app', 'web.2', 'hello'));
    const batch = () => ({ app: 'race-app', drainToken: 'd.3', frameId: 'RACE1', dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
    const both = Promise.all([pipeline.ingest(batch()), pipeline.ingest(batch())]);
    await new Promise((r) => setTimeout(r, 50));
    release();
    const results = await both;
    expect(results.map((r) => r.duplicate).sort()).toEqual([false, true]);
    // The same firing both times (one job id), and the lines counted once.
    expect(new Set(submitted).size).toBe(1);
    const { values } = await metrics.linesTotal.get();
    expect(values.filter((v) => v.labels.app === 'race-app').reduce((a, v) => a + v.value, 0)).toBe(2);
  });
});

async function matchesOf(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const { values } = await metrics.ruleMatchesTotal.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.rule), v.value]));
}
