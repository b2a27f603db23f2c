import { Redis, type RedisOptions } from 'ioredis';

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
}

export function connectRedis(target: string, opts: RedisConnectOptions = {}): Redis {
  const base: RedisOptions = {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? null : opts.maxRetriesPerRequest,
    enableOfflineQueue: opts.enableOfflineQueue ?? true,
    connectionName: opts.connectionName,
    enableAutoPipelining: opts.autoPipelining ?? false,
    // Reconnect quickly but not in a hot loop: logplex retries in seconds anyway.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
  if (target.startsWith('/')) return new Redis({ ...base, path: target });
  if (target.startsWith('rediss://') && opts.tlsInsecure) {
    return new Redis(target, { ...base, tls: { rejectUnauthorized: false } });
  }
  return new Redis(target, base);
}
