import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppEntry } from '../rules/RuleSet.js';
import type { IngestHandler } from './IngestBatch.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { keepRawBody } from './drainRoute.js';
import type { AlertContext, AlertProvider } from './alerts/providers.js';

/**
 * `POST /alerts/:provider/:app` — a log service's alert turned into lines for the rules, through
 * the same pipeline as the drains. A provider without its credentials is off (404).
 */

export interface AlertRouteOptions {
  readonly providers: ReadonlyMap<string, AlertProvider>;
  readonly context: AlertContext;
  readonly getApps: () => ReadonlyMap<string, AppEntry> | undefined;
  readonly ingest: IngestHandler;
  readonly logger: Logger;
}

export async function alertRoutes(app: FastifyInstance, opts: AlertRouteOptions): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, keepRawBody);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, keepRawBody);

  app.post<{ Params: { provider: string; app: string } }>('/alerts/:provider/:app', async (req, reply) => {
    const provider = opts.providers.get(req.params.provider);
    if (!provider) return reply.code(404).send({ error: 'no such alert provider, or its credentials are not set' });
    const appName = req.params.app;
    // No body (no content type) is an empty one: its signature cannot match, so it is a 401.
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    // Credentials first: an unauthenticated caller learns nothing, not even which apps are listed.
    const why = await provider.verify(req, body, opts.context);
    if (why) {
      opts.logger.warn({ provider: provider.name, app: appName.slice(0, 100), why }, 'alert webhook refused');
      return reply.code(401).send({ error: why });
    }
    const apps = opts.getApps();
    if (!HEROKU_APP_NAME.test(appName) || (apps && !apps.has(appName))) return reply.code(404).send({ error: 'app not listed' });
    let messages: ReturnType<typeof provider.messages>;
    try {
      messages = provider.messages(body);
    } catch (err) {
      return reply.code(400).send({ error: `unreadable payload: ${(err as Error).message}` });
    }
    try {
      const result = await opts.ingest({
        app: appName,
        drainToken: `alert-${provider.name}`,
        frameId: createHash('sha1').update(body).digest('hex'),
        dedupe: true,
        receivedAt: opts.context.now(),
        messages,
      });
      return reply.code(200).send({ lines: result.lines, firings: result.firings, duplicate: result.duplicate });
    } catch (err) {
      opts.logger.error({ provider: provider.name, app: appName, err: (err as Error).message }, 'could not store an alert');
      return reply.code(503).send({ error: 'store unavailable, retry' });
    }
  });
}
