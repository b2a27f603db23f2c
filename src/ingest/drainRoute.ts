import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AppEntry } from '../rules/RuleSet.js';
import { requirePassword } from '../basicAuth.js';
import type { IngestHandler } from './IngestBatch.js';
import { countFrameIssues, parseLogplexBody } from './logplexFrames.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { headerValue } from './headerValue.js';
import { withDeadline } from '../deadline.js';

/**
 * `POST /drains/:app` — Heroku's HTTPS drain (SPEC §3, ../shared/docs/heroku-drain-protocol.md §1).
 * Logplex drops a batch for good on any 4xx but 429 and waits at most 5 s, so: 4xx only for
 * what a retry cannot fix (auth, unknown app, size, content type), 503 within the deadline when
 * storage fails, 204 once every firing of the body is stored.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A content-type parser that keeps the raw bytes (the server's bodyLimit applies). */
export const keepRawBody = (_req: unknown, body: Buffer, done: (err: null, body: Buffer) => void): void => done(null, body);
/** Answer before logplex's 5 s REQUEST_TIMEOUT so it retries instead of counting a timeout. */
export const STORE_DEADLINE_MS = 4000;
const FRAME_ID = /^[A-Za-z0-9-]{1,64}$/;

export interface DrainRouteOptions {
  readonly drainPassword: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The allow-list of the rules in force (undefined: any app). Read per request: hot reload. */
  readonly getApps: () => ReadonlyMap<string, AppEntry> | undefined;
  readonly ingest: IngestHandler;
  readonly deadlineMs?: number;
}

export async function drainRoutes(app: FastifyInstance, opts: DrainRouteOptions): Promise<void> {
  const { metrics, logger } = opts;
  const deadlineMs = opts.deadlineMs ?? STORE_DEADLINE_MS;

  // Only logplex bodies here: any other type is 415, and the raw bytes are kept (never decoded
  // before framing: LEN counts bytes).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/logplex-1', { parseAs: 'buffer' }, keepRawBody);

  const auth = requirePassword(opts.drainPassword, 'mallet drain');
  app.addHook('onRequest', auth);
  app.addHook('onResponse', async (_req, reply) => {
    metrics.drainRequestsTotal.inc({ status: String(reply.statusCode) });
    metrics.drainRequestDuration.observe(reply.elapsedTime / 1000);
  });

  app.post<{ Params: { app: string } }>('/drains/:app', async (req, reply) => {
    const appName = req.params.app;
    const drainToken = headerValue(req.headers['logplex-drain-token']);
    if (!HEROKU_APP_NAME.test(appName)) return notFound(reply, 'not a Heroku app name');
    const apps = opts.getApps();
    if (apps) {
      const entry = apps.get(appName);
      if (!entry) return notFound(reply, `app ${appName} is not listed in the rules file`);
      if (entry.drainTokens.length > 0 && !entry.drainTokens.includes(drainToken)) {
        return notFound(reply, 'drain token is not the one pinned for this app');
      }
    }
    const body = req.body;
    if (!Buffer.isBuffer(body)) return reply.code(415).send({ error: 'expected Content-Type: application/logplex-1' });

    const frameHeader = headerValue(req.headers['logplex-frame-id']);
    const frameId = FRAME_ID.test(frameHeader) ? frameHeader : createHash('sha1').update(body).digest('hex');
    const receivedAt = Date.now();
    const parsed = parseLogplexBody(body);
    countFrameIssues(parsed, metrics);
    const declared = headerValue(req.headers['logplex-msg-count']);
    if (declared !== '' && Number(declared) !== parsed.messages.length) {
      metrics.logplexCountMismatchTotal.inc();
      logger.warn({ app: appName, declared, found: parsed.messages.length, errors: parsed.errors.length }, 'Logplex-Msg-Count disagrees with the frames found');
    }

    try {
      const outcome = await withDeadline(opts.ingest({ app: appName, drainToken, frameId, dedupe: true, receivedAt, messages: parsed.messages }), deadlineMs);
      if (outcome === 'timeout') {
        logger.error({ app: appName, frameId }, `storing the firings took over ${deadlineMs} ms: answering 503 so logplex retries`);
        return reply.code(503).header('Retry-After', '1').send({ error: 'store timeout, retry' });
      }
      return reply.code(204).send();
    } catch (err) {
      logger.error({ app: appName, frameId, err: (err as Error).message }, 'could not store the firings of a body: answering 503 so logplex retries');
      return reply.code(503).header('Retry-After', '1').send({ error: 'store unavailable, retry' });
    }
  });
}

function notFound(reply: FastifyReply, why: string) {
  return reply.code(404).send({ error: why });
}
