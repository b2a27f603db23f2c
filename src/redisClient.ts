import { Cluster, Redis, type RedisOptions } from 'ioredis';
// ioredis leaves String.prototype slow; this makes it fast again (see there).
import './stringPrototype.js';

/**
 * Opens an ioredis connection from a `redis://`/`rediss://` URL or a unix socket path (the
 * embedded Redis). Heroku Redis presents self-signed certificates: `tlsInsecure` (from
 * REDIS_TLS_INSECURE=1) accepts them, as Heroku's own docs advise.
 */
export interface RedisConnectOptions {
  readonly tlsInsecure?: boolean;
  /** BullMQ workers and blocking readers need `null` (retry forever); request paths want a bound. */
  readonly maxRetriesPerRequest?: number | null;
  /** When false, commands fail at once while disconnected instead of queueing (drain path: answer 503 fast). */
  readonly enableOfflineQueue?: boolean;
  readonly connectionName?: string;
  /** Batch commands issued in the same tick into one write (the drain path issues many small ones). */
  readonly autoPipelining?: boolean;
  /**
   * Redis Cluster (MALLET_REDIS_CLUSTER=1): `target` is one or more comma-separated seed URLs;
   * the client discovers the other masters itself and follows MOVED/ASK.
   */
  readonly cluster?: boolean;
  /** A command without an answer fails after this long (default 30 s). */
  readonly commandTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 30_000;

export function connectRedis(target: string, opts: RedisConnectOptions = {}): Redis {
  const base: RedisOptions = {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? null : opts.maxRetriesPerRequest,
    enableOfflineQueue: opts.enableOfflineQueue ?? true,
    connectionName: opts.connectionName,
    enableAutoPipelining: opts.autoPipelining ?? false,
    // Reconnect quickly but not in a hot loop: logplex retries in seconds anyway.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    // A Redis that accepts the connection and then never answers (paused, swapping) must not
    // hang what waits on it. The command bound stays above BullMQ's longest blocking wait
    // (10 s), since workers' blocking connections are duplicates of these.
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
  };
  if (opts.cluster) return connectCluster(target, base, opts);
  if (target.startsWith('/')) return new Redis({ ...base, path: target });
  if (target.startsWith('rediss://') && opts.tlsInsecure) {
    return new Redis(target, { ...base, tls: { rejectUnauthorized: false } });
  }
  return new Redis(target, base);
}

/**
 * A Cluster is returned typed as Redis: ioredis gives both the same command surface (commands,
 * evalsha, pipeline, multi, defineCommand, status, events), mallet's keys keep every script,
 * transaction and pipeline inside one slot (src/keys.ts), and BullMQ tells the two apart at run
 * time by `isCluster`. Only duplicate() differs: use duplicateRedis().
 */
function connectCluster(target: string, base: RedisOptions, opts: RedisConnectOptions): Redis {
  const seeds = target.split(',').map((s) => new URL(s.trim()));
  const first = seeds[0]!;
  const tls = first.protocol === 'rediss:' ? { tls: opts.tlsInsecure ? { rejectUnauthorized: false } : {} } : {};
  const cluster = new Cluster(seeds.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })), {
    enableOfflineQueue: base.enableOfflineQueue,
    enableAutoPipelining: base.enableAutoPipelining,
    clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
    redisOptions: {
      maxRetriesPerRequest: base.maxRetriesPerRequest,
      connectionName: base.connectionName,
      connectTimeout: base.connectTimeout,
      commandTimeout: base.commandTimeout,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...tls,
    },
  });
  return cluster as unknown as Redis;
}

/** `redis.duplicate(override)` for a single Redis or a Cluster (whose duplicate takes seed nodes first). */
export function duplicateRedis(redis: Redis, override: { maxRetriesPerRequest?: number | null; autoPipelining?: boolean } = {}): Redis {
  const { autoPipelining, ...options } = override;
  const pipelining = autoPipelining === undefined ? {} : { enableAutoPipelining: autoPipelining };
  if (!redis.isCluster) return redis.duplicate({ ...options, ...pipelining });
  const cluster = redis as unknown as Cluster;
  return cluster.duplicate(undefined, { ...cluster.options, ...pipelining, redisOptions: { ...cluster.options.redisOptions, ...options } }) as unknown as Redis;
}

/** While Redis stays away ioredis reports every reconnect attempt; one line per connection per interval is enough. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * Logs a connection's errors without flooding: the first at once, then at most one per 30 s with
 * the count in between, and once more when it is back. Every connection needs a listener anyway:
 * ioredis prints "Unhandled error event" for one without.
 */
export function logRedisErrors(redis: Redis, log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void }, name: string): Redis {
  let last = 0;
  let suppressed = 0;
  let failing = false;
  redis.on('error', (err: Error & { code?: string }) => {
    failing = true;
    const now = Date.now();
    if (now - last < ERROR_LOG_INTERVAL_MS) { suppressed++; return; }
    log.warn({ conn: name, code: err.code, err: err.message, ...(suppressed ? { repeated: suppressed } : {}) }, 'redis connection error');
    last = now;
    suppressed = 0;
  });
  redis.on('ready', () => {
    if (!failing) return;
    failing = false;
    last = 0;
    log.info({ conn: name }, 'redis connection back');
  });
  return redis;
}
