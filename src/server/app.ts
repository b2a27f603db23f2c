import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AppEntry } from '../rules/RuleSet.js';
import type { IngestHandler } from '../ingest/IngestBatch.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import { drainRoutes, MAX_BODY_BYTES } from '../ingest/drainRoute.js';
import { alertRoutes } from '../ingest/alertRoutes.js';
import type { AlertContext, AlertProvider } from '../ingest/alerts/providers.js';
import { healthRoutes } from './healthRoutes.js';
import { metricsRoute } from './metricsRoute.js';
import { reportRoutes } from './reportRoute.js';
import type { DynoStore } from '../dynos/DynoStore.js';
import { DASHBOARD_PATH, dashboardRoutes } from './dashboard.js';
import { guardConnections } from './connectionGuard.js';
import { adminRoutes, type AdminRoutesOptions } from '../console/adminRoutes.js';
import { otlpRoutes } from '../ingest/otlp/otlpRoute.js';
import type { OtlpCapture } from '../ingest/otlp/OtlpCapture.js';
import type { FirMapping } from '../rules/FirMapping.js';
import type { ThrottledLog } from '../throttledLog.js';
import { closeAfter } from './connectionRebalance.js';
import type { Clock } from '../clock.js';
import { homeRoutes } from './homeRoute.js';
import type { SuspectStore } from '../dynos/SuspectStore.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly redis: Redis;
  readonly drainPassword: string;
  readonly metricsPassword?: string | undefined;
  readonly adminPassword?: string | undefined;
  readonly getApps: () => ReadonlyMap<string, AppEntry> | undefined;
  /** Rules in force (read per request: hot reload); /readyz warns at 0. */
  readonly ruleCount?: () => number;
  readonly ingest: IngestHandler;
  /** The drain's prefilter (Pipeline.wants): lines it refuses are only counted. Absent: all kept. */
  readonly wants?: ((line: DrainEvent) => boolean) | undefined;
  /** The action queue, for the dashboard; absent → no dashboard. */
  readonly queue?: Queue | undefined;
  /** PING on the action queue's own connection, for /readyz: a firing is stored through it. */
  readonly queuePing?: () => Promise<string>;
  readonly drainDeadlineMs?: number;
  /** Rate-limited warnings (drain refusals); default: one of its own over `logger`. */
  readonly log?: ThrottledLog;
  /** Alert webhook providers whose credentials are set (SPEC §3); the others answer 404. */
  readonly alertProviders?: ReadonlyMap<string, AlertProvider>;
  readonly alertContext?: AlertContext;
  /** The Fir mapping in force (hot reload); absent → the OTLP routes are off. */
  readonly getFir?: () => FirMapping;
  readonly otlpCapture?: OtlpCapture | undefined;
  /** Where the dyno observer keeps lifecycle and trends, for the leak report; absent → none. */
  readonly dynoStore?: DynoStore | undefined;
  /** The Sidekiq stops' leak suspects, added to the leak report. */
  readonly suspectStore?: SuspectStore | undefined;
  /** The status page and its API (src/console): served with the dashboard, under the same password. */
  readonly console?: Omit<AdminRoutesOptions, 'password' | 'queuesPath'>;
  /** Rebalancing (see connectionRebalance.ts): `Connection: close` after this many requests on a connection; 0: never. */
  readonly connectionMaxRequests?: number;
  /** … or on the first request once the connection is this old; 0: never. */
  readonly connectionMaxAgeMs?: number;
  /** The service's clock: connection ages and the arrival time of drain and OTLP bodies. */
  readonly clock?: Clock;
}

/**
 * The whole request, headers and body, must arrive within this. logplex gives up on a request
 * after 5 s, so nothing it sends needs longer; 10 s still lets a 1 MiB body arrive at 100 KiB/s.
 * A sender that trickles a body is cut here, whether or not it authenticated.
 */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A connection silent this long inside a request, or before its first one, is closed. */
export const CONNECTION_TIMEOUT_MS = 10_000;
/** How often Node checks the request timeout (its default is 30 s, which would triple the bound). */
const TIMEOUT_CHECK_MS = 1_000;

/** The HTTP surface of SPEC §3 as a Fastify instance; `serve` only listens and closes it. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    http: { connectionsCheckingInterval: TIMEOUT_CHECK_MS },
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    loggerInstance: deps.logger as FastifyBaseLogger,
    // A drain posts several times a second; per-request log lines would drown the useful ones.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: handlers log through the process logger with explicit fields.
    childLoggerFactory: (logger) => logger,
    // Logplex's connections live for hours; keep them alive well past its 144 s idle close
    // (between requests this applies, not the connection timeout).
    keepAliveTimeout: 150_000,
    // Drains and alert webhooks alike (SPEC §3: 413 beyond).
    bodyLimit: MAX_BODY_BYTES,
    return503OnClosing: true,
  });
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;
  const guard = guardConnections(app.server, deps.logger);
  // Runs after the drain's onRequest authentication and before its body is read: a connection
  // that got this far showed the drain password.
  // (These app-wide hooks take a callback rather than being async: no promise and no microtask
  // for each request of every route.)
  app.addHook('preParsing', (req, _reply, payload, done) => {
    if (req.routeOptions.url?.startsWith('/drains/')) guard.trust(req.raw.socket);
    done(null, payload);
  });
  // An answer sent before its body arrived (401, 404, 415) ends the connection: kept alive, the
  // socket would wait for the rest of that body under the keep-alive timeout, not the request one.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.raw.complete) reply.header('connection', 'close');
    done(null, payload);
  });
  closeAfter(app, { maxRequests: deps.connectionMaxRequests ?? 0, maxAgeMs: deps.connectionMaxAgeMs ?? 0 }, deps.clock);
  await app.register(homeRoutes, { dashboard: deps.queue !== undefined && Boolean(deps.adminPassword) });
  await app.register(healthRoutes, { redis: deps.redis, ...(deps.queuePing ? { queuePing: deps.queuePing } : {}), ruleCount: deps.ruleCount });
  await app.register(metricsRoute, { metrics: deps.metrics, password: deps.metricsPassword });
  await app.register(drainRoutes, {
    drainPassword: deps.drainPassword,
    metrics: deps.metrics,
    logger: deps.logger,
    getApps: deps.getApps,
    ingest: deps.ingest,
    wants: deps.wants,
    deadlineMs: deps.drainDeadlineMs,
    log: deps.log,
    clock: deps.clock,
  });
  if (deps.alertProviders && deps.alertContext) {
    await app.register(alertRoutes, {
      providers: deps.alertProviders, context: deps.alertContext, getApps: deps.getApps, ingest: deps.ingest, logger: deps.logger,
    });
  }
  if (deps.getFir) {
    await app.register(otlpRoutes, {
      metrics: deps.metrics, logger: deps.logger, getApps: deps.getApps, getFir: deps.getFir, ingest: deps.ingest,
      capture: deps.otlpCapture, log: deps.log, deadlineMs: deps.drainDeadlineMs, now: deps.clock,
    });
  }
  if (deps.queue && deps.adminPassword) {
    await app.register(dashboardRoutes, { queue: deps.queue, password: deps.adminPassword });
    if (deps.console) await app.register(adminRoutes, { ...deps.console, password: deps.adminPassword, queuesPath: DASHBOARD_PATH });
  }
  if (deps.dynoStore && deps.adminPassword) {
    await app.register(reportRoutes, { store: deps.dynoStore, password: deps.adminPassword, suspects: deps.suspectStore });
  }
  return app;
}
