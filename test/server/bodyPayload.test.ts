import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { FiringSink } from '../../src/rules/Firing.js';
import { realPipeline, webR14Rules } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';

/**
 * The body script's call grows with what is distinct in the body, not with the votes: a vote for
 * a target already in the body adds its event id, its trigger line and its part's indices, not
 * its nine keys and its rule's settings again. Measured as the bytes the drain's Redis connection
 * writes for a 100-line body.
 */
const admin = testRedis();
const prefix = uniquePrefix('payload');
afterAll(async () => { await cleanupPrefix(admin, prefix); admin.disconnect(); });

// A count no body reaches: every R14 is a vote that counts, none fires.
const ruleSet = webR14Rules(1000);
const enqueue: FiringSink = { async submit(f) { return f.map(() => 'enqueued' as const); } };
const R14 = 'Error R14 (Memory quota exceeded)';
// Each line its own (as a real drain's are): a distinct microsecond, so no two lines are one value.
const ts = (i: number) => `2026-12-02T04:00:00.${String(i).padStart(6, '0')}+00:00`;

function body(votes: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 100; i++) lines.push(i < votes ? drainLine('heroku', 'web.1', R14, ts(i)) : drainLine('heroku', 'router', `at=info method=GET path=/p${i} status=200 bytes=${i}`, ts(i)));
  return frame(...lines);
}

describe('the body script payload', () => {
  it('a 100-line body: each extra vote for the same target adds at most its line and 160 bytes', async () => {
    const redis = new Redis(testRedisUrl());
    const { pipeline } = realPipeline({ redis, prefix, ruleSet, sink: enqueue });
    await redis.ping();
    const written = () => (redis as unknown as { stream: { bytesWritten: number } }).stream.bytesWritten;
    const sent = async (app: string, votes: number): Promise<number> => {
      const before = written();
      const r = await pipeline.ingest({ app, drainToken: 'd.1', frameId: `F${votes}`, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body(votes)).messages });
      expect(r).toEqual({ duplicate: false, lines: 100, firings: 0 });
      return written() - before;
    };
    await sent('warm-app', 1);
    const one = await sent('app-a', 1);
    const many = await sent('app-b', 21);
    // What a vote must send: its trigger line (as the window keeps it, after the arrival time).
    const line = Buffer.byteLength(drainLine('heroku', 'web.1', R14, ts(0)).trimEnd()) + 14;
    const perVote = (many - one) / 20;
    expect(perVote).toBeGreaterThan(line);
    // Its event id, time and part indices; each vote's nine keys and rule settings again were ~800 bytes.
    expect(perVote).toBeLessThanOrEqual(line + 160);
    redis.disconnect();
  });
});
