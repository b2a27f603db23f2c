import { Redis, type RedisOptions } from 'ioredis';

/**
 * The Node counterpart of the Puma plugin (contrib/puma): polls `GET <prefix><DYNO>` on the
 * app's Redis and, when mallet's `redis-stop-key` action has written it, takes it (GET + DEL in
 * one MULTI, so of several consumers exactly one acts) and calls `onStop(value)` once. The app
 * then stops the way it does on SIGTERM, e.g. `server.close()` (in-flight requests finish).
 * Redis being down never throws: it is logged and polling backs off (up to 30 s).
 */
export interface StopKeyLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface WatchStopKeyOptions {
  /** Default `MALLET_REDIS_URL`, else `REDIS_URL`. */
  redisUrl?: string;
  /** Default `process.env.DYNO` (`web.1` on Heroku). */
  dyno?: string;
  /**
   * This dyno's instance id, default `HEROKU_DYNO_ID` (`heroku labs:enable runtime-dyno-metadata`).
   * A key written for another instance (value ending ` instance=<uuid>`) is left alone; without an
   * id on either side the key is taken.
   */
  instanceId?: string;
  /** Default `MALLET_STOP_KEY_PREFIX`, else `puma::stop::`. */
  prefix?: string;
  /** Default `MALLET_POLL_INTERVAL` (seconds) × 1000, else 1000. */
  intervalMs?: number;
  /** Called once with the key's value (why mallet asked). */
  onStop(reason: string): void | Promise<void>;
  /** Default: console. */
  logger?: StopKeyLogger;
}

export interface StopKeyWatcher {
  /** Stops polling and closes the Redis connection. */
  stop(): Promise<void>;
}

const DEFAULT_PREFIX = 'puma::stop::';
/**
 * GET, and DEL unless the value names another instance than ARGV[1], atomically, so of several
 * consumers exactly one acts. The same script as the Puma plugin's.
 */
const TAKE_LUA = `local v = redis.call('GET', KEYS[1])
if not v then return false end
local want = string.match(v, ' instance=([0-9a-f%-]+)$')
if want and ARGV[1] ~= '' and want ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return v`;
const MAX_BACKOFF_MS = 30_000;

function envValue(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function envInterval(): number | undefined {
  const raw = envValue('MALLET_POLL_INTERVAL');
  const seconds = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** Values and error messages come from elsewhere: one short printable line, no URL password. */
function printable(text: string): string {
  return text.replace(/(rediss?:\/\/)[^@\s]*@/g, '$1[redacted]@').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

export function watchStopKey(opts: WatchStopKeyOptions): StopKeyWatcher {
  const logger = opts.logger ?? console;
  const redisUrl = opts.redisUrl ?? envValue('MALLET_REDIS_URL') ?? envValue('REDIS_URL');
  const dyno = opts.dyno ?? envValue('DYNO');
  if (!redisUrl || !dyno) {
    logger.warn(`mallet: stop-key watcher off (${!dyno ? 'DYNO' : 'MALLET_REDIS_URL / REDIS_URL'} is unset)`);
    return { stop: async () => {} };
  }
  const key = (opts.prefix ?? envValue('MALLET_STOP_KEY_PREFIX') ?? DEFAULT_PREFIX) + dyno;
  const intervalMs = opts.intervalMs ?? envInterval() ?? 1000;
  const instanceId = opts.instanceId ?? envValue('HEROKU_DYNO_ID') ?? '';

  const options: RedisOptions = {
    // Fail fast while disconnected: the poll loop owns retrying, with its own backoff.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 500, MAX_BACKOFF_MS),
  };
  if (redisUrl.startsWith('rediss://') && envValue('REDIS_TLS_INSECURE') === '1') {
    options.tls = { rejectUnauthorized: false };
  }
  const redis = new Redis(redisUrl, options);
  let failures = 0;
  // ioredis also emits every failed reconnect; the poll loop reports those, throttled.
  redis.on('error', () => {});

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = tick();
    }, ms);
    timer.unref();
  };

  /** One poll; resolves with the key's value once taken. Never throws. */
  const poll = async (): Promise<string | null> => {
    // Still (re)connecting: not a failure yet, ioredis reports a refused connection as 'reconnecting'.
    if (redis.status === 'wait' || redis.status === 'connecting' || redis.status === 'connect') {
      schedule(Math.min(intervalMs, 200));
      return null;
    }
    try {
      const got = await redis.eval(TAKE_LUA, 1, key, instanceId);
      if (failures > 0) logger.info('mallet: Redis reachable again');
      failures = 0;
      if (typeof got === 'string' && !stopped) return got;
      schedule(intervalMs);
    } catch (err) {
      failures += 1;
      const delay = Math.min(intervalMs * 2 ** Math.min(failures - 1, 10), MAX_BACKOFF_MS);
      if (failures <= 3 || failures % 10 === 0) {
        logger.warn(`mallet: cannot poll stop key (${printable((err as Error).message)}); retrying in ${delay}ms`);
      }
      schedule(delay);
    }
    return null;
  };

  const tick = async (): Promise<void> => {
    const value = await poll();
    if (value === null) return;
    stopped = true;
    redis.disconnect();
    logger.info(`mallet: stop key ${key} found (${printable(value)}): stopping gracefully`);
    // Not awaited by stop(): onStop may itself call stop().
    void (async () => {
      try {
        await opts.onStop(value);
      } catch (err) {
        logger.warn(`mallet: onStop failed: ${printable((err as Error).message)}`);
      }
    })();
  };

  logger.info(`mallet: watching stop key ${key} every ${intervalMs}ms${instanceId ? ` (instance ${printable(instanceId)})` : ''}`);
  schedule(0);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
      redis.disconnect();
    },
  };
}
