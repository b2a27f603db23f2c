import { Redis, type RedisOptions } from 'ioredis';
import { wakeChannel } from './wakeChannel.js';

/**
 * The Node counterpart of the Puma plugin (contrib/puma): polls `GET <prefix><DYNO>` on the
 * app's Redis and, when mallet's `redis-stop-key` action has written it, takes it (GET + DEL in
 * one MULTI, so of several consumers exactly one acts) and calls `onStop(value)` once. The app
 * then stops the way it does on SIGTERM, e.g. `server.close()` (in-flight requests finish).
 * A second connection subscribes to the key's wake-up channel (`mallet:wake:<key>`), on which
 * mallet publishes right after writing the key: a message (or a (re)subscription, since messages
 * sent while disconnected are lost) makes it poll at once, so a stop starts in milliseconds; the
 * key stays the signal and the poll the fallback.
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
  /**
   * Default true: also subscribe to the key's wake-up channel (`mallet:wake:<key>`, a second
   * connection), so a stop starts within milliseconds; the poll stays as the fallback.
   */
  push?: boolean;
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
  let polling = false;
  /** A wake-up arrived while a poll was running: poll again as soon as it is done. */
  let again = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      inFlight = tick();
    }, ms);
    timer.unref();
  };

  /** Poll now (a wake-up): the timer is reset, a poll running is followed by another. */
  const pollNow = () => {
    if (stopped) return;
    if (polling) {
      again = true;
      return;
    }
    if (timer) clearTimeout(timer);
    timer = undefined;
    inFlight = tick();
  };

  /** One poll: the key's value once taken, else when to poll next. Never throws. */
  const poll = async (): Promise<{ value: string } | { nextMs: number }> => {
    // Still (re)connecting: not a failure yet, ioredis reports a refused connection as 'reconnecting'.
    if (redis.status === 'wait' || redis.status === 'connecting' || redis.status === 'connect') return { nextMs: Math.min(intervalMs, 200) };
    try {
      const got = await redis.eval(TAKE_LUA, 1, key, instanceId);
      if (failures > 0) logger.info('mallet: Redis reachable again');
      failures = 0;
      if (typeof got === 'string' && !stopped) return { value: got };
      return { nextMs: intervalMs };
    } catch (err) {
      failures += 1;
      const delay = Math.min(intervalMs * 2 ** Math.min(failures - 1, 10), MAX_BACKOFF_MS);
      if (failures <= 3 || failures % 10 === 0) {
        logger.warn(`mallet: cannot poll stop key (${printable((err as Error).message)}); retrying in ${delay}ms`);
      }
      return { nextMs: delay };
    }
  };

  const tick = async (): Promise<void> => {
    polling = true;
    again = false;
    const got = await poll();
    polling = false;
    if (stopped) return;
    if (!('value' in got)) {
      if (again) pollNow();
      else schedule(got.nextMs);
      return;
    }
    const value = got.value;
    stopped = true;
    redis.disconnect();
    sub?.disconnect();
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

  // The push: mallet publishes on the key's channel right after writing the key, so a stop starts
  // within a round trip instead of up to a poll interval later. A subscribed connection can do
  // nothing else, hence a second one. Messages published while it is away are lost, so every
  // (re)subscription is followed by a poll; the key stays the signal and the poll the fallback.
  const channel = wakeChannel(key);
  const sub: Redis | undefined = opts.push === false ? undefined : new Redis(redisUrl, { ...options, autoResubscribe: false });
  let subFailures = 0;
  let subTimer: NodeJS.Timeout | undefined;
  let listening = false;
  const subscribe = async () => {
    if (!sub || stopped || sub.status !== 'ready') return;
    try {
      await sub.subscribe(channel);
      if (!listening) logger.info(`mallet: listening on ${channel} for wake-ups`);
      listening = true;
      subFailures = 0;
      pollNow();
    } catch (err) {
      // Refused (an ACL without pub/sub, a proxy): the poll carries on alone; try again later.
      subFailures += 1;
      const delay = Math.min(1000 * 2 ** Math.min(subFailures - 1, 10), MAX_BACKOFF_MS);
      if (subFailures <= 3 || subFailures % 10 === 0) {
        logger.warn(`mallet: cannot subscribe to ${channel} (${printable((err as Error).message)}); polling alone, retrying in ${delay}ms`);
      }
      if (subTimer) clearTimeout(subTimer);
      subTimer = setTimeout(() => void subscribe(), delay);
      subTimer.unref();
    }
  };
  if (sub) {
    sub.on('error', () => {});
    sub.on('ready', () => void subscribe());
    sub.on('close', () => {
      listening = false;
    });
    sub.on('message', (from: string) => {
      if (from === channel) pollNow();
    });
  }

  logger.info(`mallet: watching stop key ${key} every ${intervalMs}ms${instanceId ? ` (instance ${printable(instanceId)})` : ''}${sub ? `, woken by ${channel}` : ''}`);
  schedule(0);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (subTimer) clearTimeout(subTimer);
      sub?.disconnect();
      await inFlight;
      redis.disconnect();
    },
  };
}
