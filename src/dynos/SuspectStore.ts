import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';

/**
 * What one Sidekiq process was running when a sidekiq-stop sent it quiet: the leak report's
 * "leak suspects" are the classes that keep turning up here. Class, queue and run time only,
 * never a job's arguments.
 */
export interface SuspectJob {
  readonly class: string;
  readonly queue: string;
  readonly runS: number | undefined;
}

export interface SuspectSnapshot {
  /** When quiet was sent (ms). */
  readonly at: number;
  readonly processType: string;
  readonly dyno: string;
  readonly rule: string;
  /** The longest-running first, at most SUSPECT_BOUNDS.maxJobs. */
  readonly jobs: readonly SuspectJob[];
  /** Jobs running but not kept: past maxJobs, or a work record that could not be read. */
  readonly unread: number;
}

/**
 * Per app: at most maxSnapshots snapshots (the oldest go first) and none older than retentionMs;
 * each holds at most maxJobs jobs of ≤ 128 + 64 chars. Worst case ≈ 500 × 25 × 250 B ≈ 3.2 MB
 * per app (README "Leak suspects"; test/dynos/suspects.test.ts measures it).
 */
export interface SuspectBounds {
  readonly maxSnapshots: number;
  readonly maxJobs: number;
  readonly retentionMs: number;
}

export const SUSPECT_BOUNDS: SuspectBounds = Object.freeze({
  maxSnapshots: 500,
  maxJobs: 25,
  retentionMs: 14 * 24 * 3600_000,
});

export interface SuspectStore {
  /**
   * Idempotent per `id` (job, step and Sidekiq identity): a retried step that quiets the same
   * process again records nothing new, whatever its jobs are by then. Returns whether it was new.
   */
  record(app: string, id: string, snapshot: SuspectSnapshot): Promise<boolean>;
  read(app: string): Promise<SuspectSnapshot[]>;
}

/** Compact JSON: `a` at, `t` process type, `d` dyno, `r` rule, `j` [class, queue, runS|null][], `u` unread. */
type Stored = { a: number; t: string; d: string; r: string; j: Array<[string, string, number | null]>; u: number };

const SCRIPT = `
-- KEYS[1] index (id -> at), KEYS[2] snapshots (id -> JSON)
-- ARGV: id, at, json, maxSnapshots, cutoff, ttlSeconds
local added = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3])
if added == 1 then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
local drop = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, over - 1)) do drop[#drop + 1] = id end
end
for _, id in ipairs(drop) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return added
`;
const COMMAND = 'malletSuspectRecord';
type WithScript = { [COMMAND](index: string, snapshots: string, ...args: (string | number)[]): Promise<number> };

const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

export function encodeSnapshot(s: SuspectSnapshot, maxJobs: number = SUSPECT_BOUNDS.maxJobs): string {
  const jobs = [...s.jobs].sort((a, b) => (b.runS ?? -1) - (a.runS ?? -1));
  const kept = jobs.slice(0, maxJobs);
  const stored: Stored = {
    a: Math.trunc(s.at), t: clip(s.processType, 64), d: clip(s.dyno, 64), r: clip(s.rule, 64),
    j: kept.map((j) => [clip(j.class, 128), clip(j.queue, 64), j.runS ?? null]),
    u: s.unread + (jobs.length - kept.length),
  };
  return JSON.stringify(stored);
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Read back defensively: another version of mallet may have written it. */
export function decodeSnapshot(raw: string): SuspectSnapshot | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const at = num(o.a), processType = str(o.t);
  if (at === undefined || processType === undefined || !Array.isArray(o.j)) return undefined;
  const jobs: SuspectJob[] = [];
  for (const j of o.j as unknown[]) {
    if (!Array.isArray(j)) continue;
    const klass = str(j[0]), queue = str(j[1]);
    if (klass !== undefined && queue !== undefined) jobs.push({ class: klass, queue, runS: num(j[2]) });
  }
  return { at, processType, dyno: str(o.d) ?? '', rule: str(o.r) ?? '', jobs, unread: num(o.u) ?? 0 };
}

/** The field a snapshot is stored under: fixed length, whatever the job id. */
export function snapshotId(jobId: string, stepIndex: number, identity: string): string {
  return createHash('sha1').update(`${jobId}\n${Math.trunc(stepIndex)}\n${identity}`).digest('hex');
}

export class RedisSuspectStore implements SuspectStore {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly bounds: SuspectBounds = SUSPECT_BOUNDS) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: SCRIPT });
  }

  async record(app: string, id: string, snapshot: SuspectSnapshot): Promise<boolean> {
    const k = this.keys.suspects(app);
    const b = this.bounds;
    const added = await (this.redis as unknown as WithScript)[COMMAND](
      k.index, k.snapshots, id, Math.trunc(snapshot.at), encodeSnapshot(snapshot, b.maxJobs), b.maxSnapshots,
      Math.trunc(snapshot.at) - b.retentionMs, Math.ceil(b.retentionMs / 1000),
    );
    return added === 1;
  }

  async read(app: string): Promise<SuspectSnapshot[]> {
    const k = this.keys.suspects(app);
    const raw = await this.redis.hgetall(k.snapshots);
    const out: SuspectSnapshot[] = [];
    for (const v of Object.values(raw)) {
      const s = decodeSnapshot(v);
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.at - b.at);
  }
}
