import type { Redis } from 'ioredis';
import type { SidekiqKeys } from './SidekiqKeys.js';

/**
 * The jobs a Sidekiq process is running, from its own work records (docs/worker-control.md,
 * "Running jobs"). Only the job's class, its queue and how long it has run are kept: a payload
 * holds the job's arguments, which may be secrets or personal data, and is dropped as soon as
 * its class is read. Anything that can write the app's Redis writes these records, so every
 * read is bounded (entries, bytes per entry, bytes in all) and every value is checked.
 */
export interface RunningJob {
  /** `wrapped` for an ActiveJob wrapper (the job class the app wrote), else `class`. */
  readonly class: string;
  readonly queue: string;
  /** Seconds since the thread started the job; undefined when `run_at` is missing or junk. */
  readonly runS: number | undefined;
}

export interface WorkRead {
  readonly jobs: RunningJob[];
  /** Entries seen but not read: over a bound, malformed, or without a usable class. */
  readonly unread: number;
}

export interface WorkLimits {
  /** Sidekiq runs one entry per busy thread; concurrency above this is not a heartbeat we trust. */
  readonly maxEntries: number;
  /** Longer thread ids than Sidekiq's (≈ 10 chars) are not its own. */
  readonly maxFieldBytes: number;
  /** One entry: the job JSON with its arguments; bigger ones are not fetched. */
  readonly maxEntryBytes: number;
  /** All entries of one process together. */
  readonly maxTotalBytes: number;
}

export const WORK_LIMITS: WorkLimits = Object.freeze({
  maxEntries: 200,
  maxFieldBytes: 64,
  maxEntryBytes: 256 * 1024,
  maxTotalBytes: 4 * 1024 * 1024,
});

/** Ruby constant paths (`Billing::ExportJob`) and the names other clients use (`my-job`, `a.b`). */
const CLASS_NAME = /^[A-Za-z_][A-Za-z0-9_:./-]{0,127}$/;
const QUEUE_NAME = /^[A-Za-z0-9_:.-]{1,64}$/;
/** `run_at` above this is milliseconds, not seconds (the year 5138 in seconds). */
const MS_THRESHOLD = 1e11;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(raw: string, maxBytes: number): unknown {
  if (raw.length > maxBytes) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    // Syntax errors and a RangeError from absurd nesting alike: not a record.
    return undefined;
  }
}

/**
 * One work record (`{queue, payload, run_at}`; `payload` the job JSON as a string in 6.4+ and 7,
 * an object in older versions) → class, queue, run time; undefined when it names no class.
 */
export function parseWorkRecord(raw: string | null | undefined, nowMs: number, limits: WorkLimits = WORK_LIMITS): RunningJob | undefined {
  if (typeof raw !== 'string') return undefined;
  const record = parseJson(raw, limits.maxEntryBytes);
  if (!isObject(record)) return undefined;
  const payload = typeof record.payload === 'string' ? parseJson(record.payload, limits.maxEntryBytes) : record.payload;
  if (!isObject(payload)) return undefined;
  const wrapped = typeof payload.wrapped === 'string' && CLASS_NAME.test(payload.wrapped) ? payload.wrapped : undefined;
  const klass = wrapped ?? (typeof payload.class === 'string' && CLASS_NAME.test(payload.class) ? payload.class : undefined);
  if (klass === undefined) return undefined;
  const queueOf = (v: unknown) => (typeof v === 'string' && QUEUE_NAME.test(v) ? v : undefined);
  const queue = queueOf(record.queue) ?? queueOf(payload.queue) ?? 'unknown';
  return { class: klass, queue, runS: runSeconds(record.run_at, nowMs) };
}

function runSeconds(runAt: unknown, nowMs: number): number | undefined {
  const n = typeof runAt === 'number' ? runAt : typeof runAt === 'string' && runAt.length < 32 ? Number(runAt) : NaN;
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const atMs = n > MS_THRESHOLD ? n : n * 1000;
  // A clock ahead of ours reads as "just started", not as a negative age.
  return Math.max(0, Math.round((nowMs - atMs) / 1000));
}

/**
 * Reads one process's work hash (`:work`, or `:workers` for 6.4.1) with plain commands, so it
 * works on any Redis Sidekiq runs on: lengths first, then only the entries within the bounds.
 */
export async function readSidekiqWork(redis: Redis, keys: SidekiqKeys, identity: string, nowMs: number, limits: WorkLimits = WORK_LIMITS): Promise<WorkRead> {
  const candidates = keys.work(identity);
  const lens = await redis.pipeline(candidates.map((k) => ['hlen', k])).exec();
  let key: string | undefined;
  let len = 0;
  candidates.forEach((k, i) => {
    const [err, n] = lens?.[i] ?? [];
    if (err) throw err;
    if (key === undefined && typeof n === 'number' && n > 0) { key = k; len = n; }
  });
  if (key === undefined) return { jobs: [], unread: 0 };

  let fields: string[];
  if (len <= limits.maxEntries) fields = await redis.hkeys(key);
  else {
    // HRANDFIELD (Redis 6.2+) names a bounded sample without the values; on an older Redis
    // an oversized hash is not read at all.
    fields = await redis.hrandfield(key, limits.maxEntries).then((f) => (Array.isArray(f) ? f.map(String) : []), () => []);
  }
  fields = fields.slice(0, limits.maxEntries);
  let unread = Math.max(0, len - fields.length);
  const named = fields.filter((f) => Buffer.byteLength(f) <= limits.maxFieldBytes);
  unread += fields.length - named.length;
  if (named.length === 0) return { jobs: [], unread };

  const sizes = await redis.pipeline(named.map((f) => ['hstrlen', key!, f])).exec();
  const wanted: string[] = [];
  let budget = limits.maxTotalBytes;
  named.forEach((f, i) => {
    const [err, n] = sizes?.[i] ?? [];
    if (err) throw err;
    const size = typeof n === 'number' ? n : Infinity;
    if (size === 0) return; // the thread finished since HKEYS
    if (size > limits.maxEntryBytes || size > budget) { unread++; return; }
    budget -= size;
    wanted.push(f);
  });
  if (wanted.length === 0) return { jobs: [], unread };
  const values = await redis.hmget(key, ...wanted);
  const jobs: RunningJob[] = [];
  for (const raw of values) {
    if (raw === null) continue; // finished between the two reads
    const job = parseWorkRecord(raw, nowMs, limits);
    if (job) jobs.push(job);
    else unread++;
  }
  return { jobs, unread };
}
