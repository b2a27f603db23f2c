import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';

/**
 * Cheap bounded counters for the status page: per 10-minute bucket one hash `rule|outcome` →
 * count (and `rule|matches`), written by the deciding scripts (historyLua.ts `histStat`) and kept
 * 25 hours. The last hour is 6 buckets, the last day 144: a page view reads 144 small hashes in
 * one pipeline, whatever the traffic.
 */
export const STATS_BUCKET_MS = 10 * 60_000;
const DAY_BUCKETS = 144;

export function statsBucket(time: number): number {
  return Math.floor(time / STATS_BUCKET_MS);
}

/** Counts of one bucket: rule → name (an outcome or `matches`) → count. */
export type BucketCounts = Map<string, Map<string, number>>;

export interface DayStats {
  /** Start time (ms) of each bucket, oldest first; the last one is the current bucket. */
  readonly bucketStarts: readonly number[];
  readonly buckets: readonly BucketCounts[];
}

/** The day's buckets of the given apps, summed (one pipeline per app: an app's keys share its slot). */
export async function readDayStats(redis: Redis, keys: RedisKeys, apps: readonly string[], now: number): Promise<DayStats> {
  const last = statsBucket(now);
  const starts: number[] = [];
  for (let b = last - DAY_BUCKETS + 1; b <= last; b++) starts.push(b * STATS_BUCKET_MS);
  const buckets: BucketCounts[] = starts.map(() => new Map());
  await Promise.all(apps.map(async (app) => {
    const pipeline = redis.pipeline();
    for (let b = last - DAY_BUCKETS + 1; b <= last; b++) pipeline.hgetall(keys.stats(app, b));
    const replies = (await pipeline.exec()) ?? [];
    replies.forEach(([err, reply], i) => {
      if (err) throw err;
      const counts = buckets[i]!;
      for (const [field, value] of Object.entries(reply as Record<string, string>)) {
        const bar = field.lastIndexOf('|');
        const rule = field.slice(0, bar);
        let byName = counts.get(rule);
        if (!byName) counts.set(rule, (byName = new Map()));
        const name = field.slice(bar + 1);
        byName.set(name, (byName.get(name) ?? 0) + Number(value));
      }
    });
  }));
  return { bucketStarts: starts, buckets };
}

/** rule → name → count summed over the newest `n` buckets. */
export function sumBuckets(stats: DayStats, n: number): BucketCounts {
  const out: BucketCounts = new Map();
  for (const bucket of stats.buckets.slice(-n)) {
    for (const [rule, byName] of bucket) {
      let o = out.get(rule);
      if (!o) out.set(rule, (o = new Map()));
      for (const [name, c] of byName) o.set(name, (o.get(name) ?? 0) + c);
    }
  }
  return out;
}
