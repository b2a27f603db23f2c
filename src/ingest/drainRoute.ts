import { systemClock, type Clock } from '../clock.js';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AppEntry } from '../rules/RuleSet.js';
import { requireDigest, secretDigest } from '../basicAuth.js';
import { ThrottledLog } from '../throttledLog.js';
import type { IngestHandler } from './IngestBatch.js';
import { countFrameIssues, linesRead, parseLogplexBody } from './logplexFrames.js';
import { BodyPrefilter } from './bodyPrefilter.js';
import type { DrainEvent } from './DrainEvent.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import { headerValue } from './headerValue.js';
import { rawBodyParser } from './rawBody.js';
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
  /**
   * Whether any consumer may read a line (the pipeline's prefilter, `Pipeline.wants`: header
   * fields and byte tests of a moving view). Lines it refuses become no message, only counted
   * (`passedOver`); their event ids still count (`linesAfter`). Default: every line kept.
   */
  readonly wants?: ((line: DrainEvent) => boolean) | undefined;
  readonly deadlineMs?: number;
  /** Where refusals are logged, rate-limited per app and reason (default: one over `logger`). */
  readonly log?: ThrottledLog;
  /** A body's arrival time, which the rules count in (default: the system clock). */
  readonly clock?: Clock;
}

/**
 * Why a request was refused, by the status Fastify itself answers with (401 from the auth hook,
 * 413 and 415 before the handler); the handler's own 404s say more.
 */
const REFUSED: Readonly<Record<number, string>> = {
  401: 'bad-credentials',
  404: 'not-found',
  413: 'body-too-large',
  415: 'content-type',
};

export async function drainRoutes(app: FastifyInstance, opts: DrainRouteOptions): Promise<void> {
  const { metrics, logger } = opts;
  const deadlineMs = opts.deadlineMs ?? STORE_DEADLINE_MS;
  const clock = opts.clock ?? systemClock;
  // One for the route: a body is parsed without yielding, so no two bodies share it at once.
  const prefilter = opts.wants === undefined ? undefined : new BodyPrefilter(opts.wants);

  // Only logplex bodies here: any other type is 415, and the raw bytes are kept (never decoded
  // before framing: LEN counts bytes).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/logplex-1', rawBodyParser(app.initialConfig.bodyLimit ?? MAX_BODY_BYTES));

  const log = opts.log ?? new ThrottledLog(logger);
  // The reason a handler gave for its 404, read back when the refusal is logged.
  const refusals = new WeakMap<FastifyRequest, string>();

  // An app with its own drain password is opened by it alone; the others by MALLET_DRAIN_PASSWORD.
  // So one app's drain URL cannot feed another app's rules.
  const sharedDigest = secretDigest(opts.drainPassword);
  const auth = requireDigest((req) => opts.getApps()?.get(appParam(req))?.drainPasswordDigest ?? sharedDigest, 'mallet drain');
  app.addHook('onRequest', auth);
  // The counter's child per status, resolved once (a drain answers a handful of statuses).
  const byStatus = new Map<number, { inc(): void }>();
  const requestsWith = (status: number) => {
    let c = byStatus.get(status);
    if (c === undefined) byStatus.set(status, (c = metrics.drainRequestsTotal.labels(String(status))));
    return c;
  };
  // A callback hook, not an async one (no promise, no microtask per request).
  app.addHook('onResponse', (req, reply, done) => {
    const status = reply.statusCode;
    requestsWith(status).inc();
    metrics.drainRequestDuration.observe(reply.elapsedTime / 1000);
    const reason = REFUSED[status];
    if (reason !== undefined) {
      // Logplex drops a refused batch for good: the operator must be able to see why.
      const why = refusals.get(req);
      log.warn(`drain-${reason}`, appParam(req), { status, ...(why ? { why } : {}) }, `drain request refused (${status})`);
    }
    done();
  });
  const notFound = (req: FastifyRequest, reply: FastifyReply, why: string) => {
    refusals.set(req, why);
    return reply.code(404).send({ error: why });
  };

  app.post<{ Params: { app: string } }>('/drains/:app', async (req, reply) => {
    const appName = req.params.app;
    const drainToken = headerValue(req.headers['logplex-drain-token']);
    if (!HEROKU_APP_NAME.test(appName)) return notFound(req, reply, 'not a Heroku app name');
    const apps = opts.getApps();
    if (apps) {
      const entry = apps.get(appName);
      if (!entry) return notFound(req, reply, `app ${appName} is not listed in the rules file`);
      if (entry.drainTokens.length > 0 && !entry.drainTokens.includes(drainToken)) {
        return notFound(req, reply, 'drain token is not the one pinned for this app');
      }
    }
    const body = req.body;
    if (!Buffer.isBuffer(body)) return reply.code(415).send({ error: 'expected Content-Type: application/logplex-1' });

    const frameHeader = headerValue(req.headers['logplex-frame-id']);
    const frameId = FRAME_ID.test(frameHeader) ? frameHeader : createHash('sha1').update(body).digest('hex');
    const receivedAt = clock();
    const parsed = parseLogplexBody(body, prefilter);
    countFrameIssues(parsed, metrics);
    const declared = headerValue(req.headers['logplex-msg-count']);
    if (declared !== '' && Number(declared) !== linesRead(parsed)) {
      metrics.logplexCountMismatchTotal.inc();
      logger.warn({ app: appName, declared, found: linesRead(parsed), errors: parsed.errors.length }, 'Logplex-Msg-Count disagrees with the frames found');
    }
    const { messages, passedOver, linesAfter } = parsed;

    try {
      // Logplex's 5 s run from when it sent the request: the time spent receiving and parsing the
      // body counts against the deadline too.
      const left = Math.max(0, deadlineMs - reply.elapsedTime);
      const outcome = await withDeadline(opts.ingest({ app: appName, drainToken, frameId, dedupe: true, receivedAt, messages, passedOver, linesAfter }), left);
      if (outcome === 'timeout') {
        // One line per request while Redis is slow or away would flood the log: rate-limited.
        log.error('drain-store-timeout', appName, { frameId }, `storing the firings took over ${deadlineMs} ms from the request's start: answering 503 so logplex retries`);
        return reply.code(503).header('Retry-After', '1').send({ error: 'store timeout, retry' });
      }
      return reply.code(204).send();
    } catch (err) {
      log.error('drain-store-failed', appName, { frameId, err: (err as Error).message }, 'could not store the firings of a body: answering 503 so logplex retries');
      return reply.code(503).header('Retry-After', '1').send({ error: 'store unavailable, retry' });
    }
  });
}

function appParam(req: FastifyRequest): string {
  return (req.params as { app?: string } | undefined)?.app ?? '';
}
