import type { Redis } from 'ioredis';
import type { StepContext } from '../Executor.js';

/**
 * How often the key is looked at while it is watched. The Puma plugin and the agent poll every
 * MALLET_POLL_INTERVAL (1 s by default); a PTTL every 250 ms costs one small command.
 */
const POLL_MS = 250;

export type Consumption = { readonly consumed: true; readonly afterMs: number } | { readonly consumed: false };

/**
 * Watches a stop key mallet has just set until its TTL: the Puma plugin or the agent deletes the
 * key it acts on, so a key gone before its TTL was taken (`consumed`); one that lasted until its
 * TTL had nobody watching that dyno (`not consumed`: plugin missing, another Redis, another DYNO).
 *
 * A key deleted in the last poll before its TTL cannot be told from one that expired, and counts
 * as not consumed: a consumer takes a key within its own poll interval, far inside the TTL.
 */
export async function watchStopKeyConsumption(redis: Redis, key: string, ttlMs: number, ctx: Pick<StepContext, 'now' | 'sleep'>): Promise<Consumption> {
  const start = ctx.now();
  const expiresAt = start + ttlMs;
  for (;;) {
    const pttl = await redis.pttl(key);
    const now = ctx.now();
    if (pttl === -2) return now < expiresAt - POLL_MS ? { consumed: true, afterMs: now - start } : { consumed: false };
    // Still there past its TTL: someone set it again (another firing, a second mallet); not taken.
    if (now >= expiresAt + POLL_MS) return { consumed: false };
    await ctx.sleep(Math.max(1, Math.min(POLL_MS, expiresAt + POLL_MS - now)));
  }
}
