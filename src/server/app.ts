import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AppEntry } from '../rules/RuleSet.js';
import type { IngestHandler } from '../ingest/IngestBatch.js';
import { drainRoutes, MAX_BODY_BYTES } from '../ingest/drainRoute.js';
import { alertRoutes } from '../ingest/alertRoutes.js';
import type { AlertContext, AlertProvider } from '../ingest/alerts/providers.js';
import { healthRoutes } from './healthRoutes.js';
import { metricsRoute } from './metricsRoute.js';
import { dashboardRoutes } from './dashboard.js';
import { reportRoutes } from './reportRoute.js';
import type { DynoStore } from '../dynos/DynoStore.js';
import type { ThrottledLog } from '../throttledLog.js';
import { closeAgedConnections } from './connectionRebalance.js';
import type { Clock } from '../clock.js';
import { homeRoutes } from './homeRoute.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly redis: Redis;
  readonly drainPassword: string;
  readonly metricsPassword?: string | undefined;
  readonly adminPassword?: string | undefined;
  readonly getApps: () => ReadonlyMap<string, AppEntry> | undefined;
  readonly ingest: IngestHandler;
  /** The action queue, for the dashboard; absent → no dashboard. */
  readonly queue?: Queue | undefined;
  readonly drainDeadlineMs?: number;
  /** Rate-limited warnings (drain refusals); default: one of its own over `logger`. */
  readonly log?: ThrottledLog;
  /** Alert webhook providers whose credentials are set (SPEC §3); the others answer 404. */
  readonly alertProviders?: ReadonlyMap<string, AlertProvider>;
  readonly alertContext?: AlertContext;
  /** Where the dyno observer keeps lifecycle and trends, for the leak report; absent → none. */
  readonly dynoStore?: DynoStore | undefined;
  /** Rebalancing (see connectionRebalance.ts): `Connection: close` after this many requests on a connection; 0: never. */
  readonly connectionMaxRequests?: number;
  /** … or on the first request once the connection is this old; 0: never. */
  readonly connectionMaxAgeMs?: number;
  readonly clock?: Clock;
}

/** The HTTP surface of SPEC §3 as a Fastify instance; `serve` only listens and closes it. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // A drain posts several times a second; per-request log lines would drown the useful ones.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: handlers log through the process logger with explicit fields.
    childLoggerFactory: (logger) => logger,
    // Logplex's connections live for hours; keep them alive well past its 144 s idle close.
    keepAliveTimeout: 150_000,
    // Drains and alert webhooks alike (SPEC §3: 413 beyond).
    bodyLimit: MAX_BODY_BYTES,
    return503OnClosing: true,
    // Node answers the Nth request of a connection with `Connection: close` (rebalancing).
    maxRequestsPerSocket: deps.connectionMaxRequests ?? 0,
  });
  closeAgedConnections(app, deps.connectionMaxAgeMs ?? 0, deps.clock);
  await app.register(homeRoutes, { dashboard: deps.queue !== undefined && Boolean(deps.adminPassword) });
  await app.register(healthRoutes, { redis: deps.redis });
  await app.register(metricsRoute, { metrics: deps.metrics, password: deps.metricsPassword });
  await app.register(drainRoutes, {
    drainPassword: deps.drainPassword,
    metrics: deps.metrics,
    logger: deps.logger,
    getApps: deps.getApps,
    ingest: deps.ingest,
    deadlineMs: deps.drainDeadlineMs,
    log: deps.log,
  });
  if (deps.alertProviders && deps.alertContext) {
    await app.register(alertRoutes, {
      providers: deps.alertProviders, context: deps.alertContext, getApps: deps.getApps, ingest: deps.ingest, logger: deps.logger,
    });
  }
  if (deps.queue && deps.adminPassword) {
    await app.register(dashboardRoutes, { queue: deps.queue, password: deps.adminPassword });
  }
  if (deps.dynoStore && deps.adminPassword) {
    await app.register(reportRoutes, { store: deps.dynoStore, password: deps.adminPassword });
  }
  return app;
}
