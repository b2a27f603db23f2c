import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { MalletError } from '../errors.js';
import { redisKeys, type RedisKeys } from '../keys.js';
import { createLogger, wantsPrettyLogs, type Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { connectRedis, logRedisErrors } from '../redisClient.js';
import { loadRules, formatRuleError, type CompiledRuleSet } from '../rules/load.js';
import { watchRules } from '../rules/watch.js';
import { RulesEngine } from '../rules/engine.js';
import { ActionQueue } from '../actions/queue.js';
import { startConfiguredWorker } from '../actions/startConfiguredWorker.js';
import { startWorkerThread, workerRulesOf, type WorkerThread } from '../actions/workerThread.js';
import { RedisSuspectStore } from '../dynos/SuspectStore.js';
import { createSyslogListener } from '../ingest/syslogListener.js';
import { buildApp } from './app.js';
import { alertContext, alertProvidersFrom } from './alertProviders.js';
import { Pipeline } from './pipeline.js';
import { DynoObserver } from '../dynos/DynoObserver.js';
import { RedisDynoStore } from '../dynos/dynoScript.js';
import { RedisLifeStore } from '../dynos/lifeScript.js';
import { leakReportSection } from '../dynos/reportSection.js';
import { startEmbeddedRedis, type EmbeddedRedis } from './embeddedRedis.js';
import { withDeadline } from '../deadline.js';
import { OtlpCapture } from '../ingest/otlp/OtlpCapture.js';
import { SilenceCache } from '../console/silenceCache.js';
import { SilenceStore } from '../console/silenceStore.js';
import type { RulesStatus } from '../console/RulesStatus.js';
import { ADMIN_PATH } from '../console/adminRoutes.js';
import { DASHBOARD_PATH } from './dashboard.js';
import { generateDrainPassword } from './generatedDrainPassword.js';
import { systemClock, type Clock } from '../clock.js';
import { ThrottledLog } from '../throttledLog.js';

/**
 * Composition root for `mallet serve` and `mallet worker`: the only place that turns Config into
 * running parts, and the place that takes them down in order on SIGTERM (SPEC §6).
 */
export interface ServiceOptions {
  readonly config: Config;
  readonly logger?: Logger;
  readonly http?: boolean;
  /**
   * Runs the action worker; `'thread'` in a worker thread of this process (what `mallet serve`
   * does: the firing's worker round trips then wait on neither the drain's event loop nor its
   * garbage collection, README "Scaling"), `true` on this event loop (`mallet worker`, tests).
   */
  readonly worker?: boolean | 'thread';
  /**
   * The arrival time of drain bodies, which the rules count in, and the clock of the limits and
   * silences (default: the system clock). Tests step it to deliver a captured log as a live
   * drain would, each body at its lines' time.
   */
  readonly clock?: Clock;
}

export interface Service {
  readonly app: FastifyInstance | undefined;
  readonly url: string | undefined;
  readonly syslogPort: number | undefined;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly metrics: Metrics;
  readonly drainPassword: string;
  /** The action worker's thread, when it runs in one (`worker: 'thread'`). */
  readonly workerThread: WorkerThread | undefined;
  ruleSet(): CompiledRuleSet;
  reloadRules(): Promise<boolean>;
  close(): Promise<void>;
}

/** Grace for running jobs on shutdown; Heroku SIGKILLs 30 s after SIGTERM, SPEC says exit in 25 s. */
const WORKER_CLOSE_MS = 15_000;
/** Any other part gets this long to close (the worker's own limit above is shorter than this plus the rest). */
const CLOSE_STEP_MS = 16_000;

/** How long start waits for the drain's and the queue's Redis connections before listening anyway. */
const REDIS_READY_WAIT_MS = 5_000;

function readyWithin(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => { clearTimeout(timer); redis.off('ready', onReady); resolve(ok); };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.on('ready', onReady);
  });
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const keys = redisKeys(config.keyPrefix, config.queuePrefix);
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      // A part that cannot close (Redis unreachable) must not hold the others past SPEC §6's 25 s.
      try {
        if ((await withDeadline(Promise.resolve(close()), CLOSE_STEP_MS)) === 'timeout') logger.warn(`a part did not close within ${CLOSE_STEP_MS / 1000} s: moving on`);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'error while shutting down');
      }
    }
  };

  try {
    let embedded: EmbeddedRedis | undefined;
    let redisTarget = config.redisUrl;
    if (redisTarget === undefined) {
      embedded = await startEmbeddedRedis('.mallet/redis', logger);
      closers.push(() => embedded?.stop());
      redisTarget = embedded.socketPath;
    }
    const connect = (name: string, maxRetriesPerRequest: number | null, enableOfflineQueue = true, autoPipelining = false) => {
      const r = connectRedis(redisTarget!, { tlsInsecure: config.redisTlsInsecure, cluster: config.redisCluster, maxRetriesPerRequest, enableOfflineQueue, autoPipelining, connectionName: `mallet-${name}` });
      logRedisErrors(r, logger, name);
      // QUIT waits for a connection that may never come back; a connection that is not up just drops.
      closers.push(() => (r.status === 'ready' ? r.quit().catch(() => r.disconnect()) : r.disconnect()));
      return r;
    };
    // The request path fails fast while Redis is away (→ 503, logplex retries); workers wait.
    // The bodies' script calls, nearly all of this connection's traffic, are pipelined per turn
    // by BodyFlush in bounded writes (its explicit pipelines bypass ioredis auto-pipelining, which
    // keeps one pipeline in flight and gathers everything issued meanwhile into one unbounded
    // write: bench/support/flushCost.ts). The rest (firings, frame marks, silences) stays
    // auto-pipelined, as before: turning it off was not shown to help, and the Redis-restart test
    // (test/server/redisOutage.test.ts) then failed more often on a loaded machine — a 503 on the
    // first POST after /readyz turned 200, from the firing's BullMQ add, seen with it on too.
    const redis = connect('drain', 1, false, true);
    const workerRedis = connect('worker', null);

    const first = await loadRules(config.rulesPath, config.env);
    if (!first.ok) {
      throw new MalletError('MALLET_RULES_INVALID', `rules file ${config.rulesPath} is invalid:\n${first.errors.map(formatRuleError).join('\n')}`);
    }
    let ruleSet = first.ruleSet;
    let workerThread: WorkerThread | undefined;
    metrics.linesTotal.listAppsFrom(() => ruleSet.apps);
    // Shown relative to where mallet runs when it is inside it (config/rules.yml), else as configured.
    const shownPath = relative(process.cwd(), config.rulesPath).startsWith('..') ? config.rulesPath : relative(process.cwd(), config.rulesPath);
    let rulesStatus: RulesStatus = { path: shownPath, fromExample: config.rulesFromExample, loadedAt: Date.now(), rules: ruleSet.rules.length };
    for (const w of first.warnings) logger.warn({ rules: config.rulesPath }, `rules warning: ${formatRuleError(w)}`);
    if (config.rulesFromExample) logger.warn({ rules: config.rulesPath }, 'config/rules.yml not found: using the example rules (set MALLET_RULES or create config/rules.yml)');
    logger.info({ rules: config.rulesPath, count: ruleSet.rules.length }, 'rules loaded');
    const watcher = watchRules({
      path: config.rulesPath,
      env: config.env,
      logger,
      onReload: (next) => {
        ruleSet = next;
        workerThread?.setRules(workerRulesOf(next));
        rulesStatus = { path: shownPath, fromExample: config.rulesFromExample, loadedAt: Date.now(), rules: next.rules.length };
      },
      onRefused: (errors) => { rulesStatus = { ...rulesStatus, refused: { at: Date.now(), errors } }; },
    });
    closers.push(() => watcher.close());
    const onHup = () => { void watcher.reload(); };
    process.on('SIGHUP', onHup);
    closers.push(() => process.off('SIGHUP', onHup));

    const silences = new SilenceStore(redis, keys, clock);
    // Read on every firing, so kept in memory while Redis tells of every change (silenceCache.ts).
    const silenceCache = new SilenceCache(() => silences.active(), { redis, key: keys.silences(), clock, logger });
    closers.push(() => silenceCache.close());
    const queue = new ActionQueue({
      connection: redis,
      queuePrefix: config.queuePrefix,
      keys,
      metrics,
      logger,
      dryRun: config.dryRun,
      getLimits: () => ruleSet.limits,
      getSilences: () => silenceCache.active(),
      silencesInMemory: () => silenceCache.inMemory(),
      clock,
    });
    closers.push(() => queue.close());

    // On the drain connection, which fails fast: a step must not hang on its report while mallet's Redis is away.
    const suspectStore = new RedisSuspectStore(redis, keys);
    if (opts.worker === 'thread') {
      const thread = await startWorkerThread({
        data: { config, redisTarget, rules: workerRulesOf(ruleSet), log: { level: config.logLevel, pretty: wantsPrettyLogs(config.logFormat, process.stdout) } },
        metrics,
        logger,
      });
      workerThread = thread;
      metrics.workerThreadBusySeconds.readFrom(() => thread.busySecondsSinceLastRead());
      closers.push(() => thread.close(WORKER_CLOSE_MS));
    } else if (opts.worker !== false) {
      // Read at execution: a reload that changes an app's Redis or token applies to queued jobs.
      const worker = startConfiguredWorker({ config, connection: workerRedis, keys, metrics, logger, rules: () => ruleSet, suspects: suspectStore });
      closers.push(() => worker.close(WORKER_CLOSE_MS));
    }

    let app: FastifyInstance | undefined;
    let url: string | undefined;
    let syslogPort: number | undefined;
    let drainPassword = config.drainPassword ?? '';
    if (opts.http !== false) {
      if (!config.drainPassword) drainPassword = generateDrainPassword(logger, config.port);
      if (!config.adminPassword) logger.info('MALLET_ADMIN_PASSWORD is not set: the /admin status page and the /admin/queues dashboard are off');
      // One facility for the warnings a sender controls the rate of (bad lines, refused drains).
      const log = new ThrottledLog(logger);
      closers.push(() => log.flush());
      // The observer writes the lifecycle after each delivery, the engine reads it for the next.
      const life = new RedisLifeStore(redis, keys);
      const engine = new RulesEngine({ redis, keys, metrics, logger, log, getRuleSet: () => ruleSet, life });
      const dynoStore = new RedisDynoStore(redis, keys);
      const observers = [new DynoObserver(dynoStore, undefined, life)];
      const pipeline = new Pipeline({ redis, keys, engine, sink: queue, observers, metrics, logger });
      app = await buildApp({
        logger,
        metrics,
        redis,
        drainPassword,
        log,
        metricsPassword: config.metricsPassword,
        adminPassword: config.adminPassword,
        getApps: () => ruleSet.apps,
        ruleCount: () => ruleSet.rules.length,
        ingest: pipeline.ingest,
        // As on the syslog listener: most lines no rule or observer reads are only counted.
        wants: pipeline.wants,
        queue: queue.queue,
        queuePing: () => queue.connection.ping(),
        alertProviders: alertProvidersFrom(config),
        alertContext: alertContext(redis, keys),
        getFir: () => ruleSet.fir,
        otlpCapture: config.otlpCaptureDir === undefined ? undefined : new OtlpCapture(config.otlpCaptureDir, logger),
        // `sections`: other parts add their own section to the status page here (rendered last).
        console: { redis, keys, getRuleSet: () => ruleSet, getRulesStatus: () => rulesStatus, silences, clock, sections: async () => [await leakReportSection(dynoStore, [...(ruleSet.apps?.keys() ?? [])], 7 * 24 * 60 * 60 * 1000, suspectStore)] },
        connectionMaxRequests: config.connectionMaxRequests,
        connectionMaxAgeMs: config.connectionMaxAgeMs,
        dynoStore,
        suspectStore,
        clock,
      });
      if (config.otlpCaptureDir !== undefined) logger.warn({ dir: config.otlpCaptureDir }, 'MALLET_OTLP_CAPTURE is set: OTLP requests are written to files (headers without secrets)');
      // The drain connection and the queue's fail fast while down; listening before they are up
      // would answer the first requests 503. Wait for them, but not forever: with Redis away
      // mallet still starts.
      const up = await Promise.all([readyWithin(redis, REDIS_READY_WAIT_MS), readyWithin(queue.connection, REDIS_READY_WAIT_MS)]);
      if (!up.every(Boolean)) logger.warn(`redis is not reachable after ${REDIS_READY_WAIT_MS / 1000} s: listening anyway, drains answer 503 until it is`);
      url = await app.listen({ port: config.port, host: config.host });
      const listening = app;
      closers.push(() => listening.close());
      logger.info({ url }, 'mallet is listening');
      if (config.adminPassword) {
        // The address it listens on may be 0.0.0.0: the URL a person opens on this machine is localhost.
        const local = url.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, '//localhost');
        logger.info({ status: `${local}${ADMIN_PATH}`, queues: `${local}${DASHBOARD_PATH}` }, `status page: ${local}${ADMIN_PATH} (jobs: ${local}${DASHBOARD_PATH}; user any, password MALLET_ADMIN_PASSWORD)`);
      }

      if (config.syslogPort !== undefined) {
        let seq = 0;
        const syslog = createSyslogListener({
          port: config.syslogPort,
          host: config.host,
          tls: config.syslogTlsCert && config.syslogTlsKey
            ? { cert: readFileSync(config.syslogTlsCert), key: readFileSync(config.syslogTlsKey) }
            : undefined,
          logger,
          metrics,
          isKnownToken: (drainToken) => ruleSet.appForDrainToken(drainToken) !== undefined,
          // Most lines no rule or observer reads: they are counted, never made into messages.
          wants: pipeline.wants,
          onBatch: async (drainToken, messages, passedOver) => {
            const appName = ruleSet.appForDrainToken(drainToken);
            if (!appName) {
              const skipped = passedOver === undefined ? 0 : passedOver.heroku + passedOver.app + passedOver.other;
              metrics.framesInvalidTotal.inc({ reason: 'unknown-drain-token' }, messages.length + skipped);
              return;
            }
            await pipeline.ingest({ app: appName, drainToken, frameId: `s${Date.now().toString(36)}${(seq++).toString(36)}`, dedupe: false, receivedAt: clock(), messages, passedOver });
          },
        });
        syslogPort = (await syslog.listen()).port;
        closers.push(() => syslog.close());
        logger.info({ port: syslogPort, tls: Boolean(config.syslogTlsCert) }, 'syslog drain listener started');
      }
    }

    return {
      app, url, syslogPort, redis, keys, metrics, drainPassword,
      workerThread,
      ruleSet: () => ruleSet,
      reloadRules: () => watcher.reload(),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
