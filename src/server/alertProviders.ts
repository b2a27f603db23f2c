import type { Config } from '../config.js';
import { genericProvider, logentriesProvider, papertrailProvider, type AlertProvider } from '../ingest/alerts/providers.js';

/** The alert webhooks whose credentials are configured; a provider without them stays off (404). */
export function alertProvidersFrom(config: Config): ReadonlyMap<string, AlertProvider> {
  const providers = new Map<string, AlertProvider>();
  if (config.logentriesUser && config.logentriesPassword) providers.set('logentries', logentriesProvider(config.logentriesUser, config.logentriesPassword));
  if (config.papertrailToken) providers.set('papertrail', papertrailProvider(config.papertrailToken));
  if (config.webhookSecret) providers.set('generic', genericProvider(config.webhookSecret));
  return providers;
}
