import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { RedisKeys } from '../keys.js';
import { genericProvider, logentriesProvider, papertrailProvider, type AlertContext, type AlertProvider } from '../ingest/alerts/providers.js';

/** Logentries nonces are remembered past its Date skew window (±5 min), so a replay is refused. */
const NONCE_TTL_S = 15 * 60;

/** What the providers check a request against: the clock and the nonces already seen, in Redis. */
export function alertContext(redis: Redis, keys: RedisKeys): AlertContext {
  return {
    now: () => Date.now(),
    claimNonce: async (provider, nonce) => (await redis.set(keys.alertNonce(provider, nonce), '1', 'EX', NONCE_TTL_S, 'NX')) === 'OK',
  };
}

/** The alert webhooks whose credentials are configured; a provider without them stays off (404). */
export function alertProvidersFrom(config: Config): ReadonlyMap<string, AlertProvider> {
  const providers = new Map<string, AlertProvider>();
  if (config.logentriesUser && config.logentriesPassword) providers.set('logentries', logentriesProvider(config.logentriesUser, config.logentriesPassword));
  if (config.papertrailToken) providers.set('papertrail', papertrailProvider(config.papertrailToken));
  if (config.webhookSecret) providers.set('generic', genericProvider(config.webhookSecret));
  return providers;
}
