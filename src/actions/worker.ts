import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { ACTION_QUEUE, type RedisKeys } from '../keys.js';
import type { ResolvedAction, StopKeyActionSpec } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import type { ActionJobData } from './ActionJob.js';
import { expandRef } from './envRef.js';
import { JobLockLostError, PermanentStepError, type Executor, type StepResult } from './Executor.js';
import { executeStep } from './executeStep.js';
import { firingMode, type FiringMode } from './FiringMode.js';
import { LEASE_MS, RollingLease } from './RollingLease.js';
import { StepLedger, type StepRecord } from './StepLedger.js';
import { defaultExecutors } from './executors/index.js';
import { afterStopKeyWrite, stopKeyExecutor, stopKeyWrite } from './executors/stopKey.js';
import { claimStopKey, type StopKeyWrite, type StopKeyWritten } from './scripts/claimStopKey.js';
import type { NotifyStepContext } from './executors/notify.js';
import { describeAction, failureText, notifyTextFor } from './notifyText.js';
import { withDeadline } from '../deadline.js';
import { duplicateRedis, logRedisErrors } from '../redisClient.js';

export interface ActionWorkerOptions {
  /** mallet's own Redis (queue, limits, steps; stop keys when no app Redis is configured). */
  connection: Redis;
  queuePrefix: string;
  keys: RedisKeys;
  metrics: WorkerMetrics;
  logger: Logger;
  /** For `${VAR}` references in job data, expanded when a step runs. */
  env: Readonly<Record<string, string | undefined>>;
  herokuApiUrl: string;
  /** HEROKU_API_TOKEN; an action's tokenRef (apps.X.heroku_api_token) overrides it. */
  herokuApiToken?: string;
  /** Below this last-seen `RateLimit-Remaining` restarts wait for the account pool to refill. */
  herokuMinRemaining?: number;
  getLimits: () => Limits;
  /** apps.X.redis_url reference, used when an action names no Redis of its own. */
  getAppRedisRef?: (app: string) => string | undefined;
  /** apps.X.heroku_api_token reference, used when a heroku-restart names no token of its own. */
  getAppHerokuTokenRef?: (app: string) => string | undefined;
  /** Extra executors (e.g. sidekiq-stop); one with the type of a default replaces it. */
  executors?: readonly Executor[];
  concurrency?: number;
  clock?: Clock;
  lockDuration?: number;
  stalledInterval?: number;
  /** How long a job waits for a rolling slot before it looks again. */
  rollingRetryMs?: number;
  /** REDIS_TLS_INSECURE, applied to the apps' `rediss://` URLs too (Heroku Redis). */
  redisTlsInsecure?: boolean;
}

/**
 * The worker's two metrics (SPEC §7): the service's own, or, in a worker thread, stand-ins that
 * post each change to the thread's parent, whose /metrics serves them (workerThread.ts).
 */
export interface WorkerMetrics {
  readonly actionsTotal: { inc(labels: { type: string; outcome: string }, value?: number): void };
  readonly triggerLatency: { observe(seconds: number): void };
}

export interface ActionWorker {
  readonly worker: Worker<ActionJobData>;
  /** Stops taking jobs and lets running ones finish; past the timeout they go back to the queue. */
  close(timeoutMs?: number): Promise<void>;
}

export type { StepRecord } from './StepLedger.js';

const UNLIMITED_STALLS = 1_000_000;
/**
 * Jobs one worker runs at once. A job mostly waits (a stop key watched until it is taken or its
 * TTL, Sidekiq's busy jobs, a restart's backoff), and what bounds remediations is the rolling
 * lease (limits.per_process_type), not this: with 4, four stop keys nobody took held every slot
 * for their 60 s TTL and a new trigger waited behind them (the latency bench saw 22–171 s).
 */
export const WORKER_CONCURRENCY = 64;
/** Connect and command timeout on an app's Redis (stop keys, Sidekiq): each command is small. */
const APP_REDIS_TIMEOUT_MS = 5000;

/** Runs `mallet-actions` jobs: each action a step, run once, in order (SPEC §5, §6). */
export function startActionWorker(opts: ActionWorkerOptions): ActionWorker {
  // One clock for leases, delays and records. It must be the wall clock's time: it is compared
  // with Redis key expiry and BullMQ's delayed-job scores.
  const clock = opts.clock ?? systemClock;
  const { keys, metrics, logger } = opts;
  const redis = logRedisErrors(duplicateRedis(opts.connection), logger, 'worker-state');
  const rollingRetryMs = opts.rollingRetryMs ?? 3000;
  const shutdown = new AbortController();

  const executors = new Map<string, Executor>();
  for (const e of [
    ...defaultExecutors({ apiUrl: opts.herokuApiUrl, defaultToken: opts.herokuApiToken, redis, keys, ...(opts.getAppHerokuTokenRef ? { appTokenRef: opts.getAppHerokuTokenRef } : {}), ...(opts.herokuMinRemaining !== undefined ? { minRemaining: opts.herokuMinRemaining } : {}) }),
    ...(opts.executors ?? []),
  ]) executors.set(e.type, e);

  const appRedis = new Map<string, Redis>();
  const redisFor = (app: string) => (ref: string | undefined): Redis => {
    const chosen = ref ?? opts.getAppRedisRef?.(app);
    if (chosen === undefined) return redis;
    const url = expandRef(chosen, opts.env);
    if (!/^rediss?:\/\//.test(url)) throw new PermanentStepError('the app Redis URL must be redis:// or rediss://');
    let conn = appRedis.get(url);
    if (!conn) {
      conn = new Redis(url, {
        maxRetriesPerRequest: 2,
        // A frozen app Redis (paused, a full disk, a failover) must fail the step, not hold it
        // and its rolling slot without end: a timed-out command fails and retries like any other.
        connectTimeout: APP_REDIS_TIMEOUT_MS,
        commandTimeout: APP_REDIS_TIMEOUT_MS,
        ...(url.startsWith('rediss://') && opts.redisTlsInsecure ? { tls: { rejectUnauthorized: false } } : {}),
      });
      // The URL may hold a password: log that it failed, not where.
      conn.on('error', (err: Error & { code?: string }) => logger.warn({ app, code: err.code }, 'app Redis connection error'));
      appRedis.set(url, conn);
    }
    return conn;
  };

  const dropUnreadyAppRedis = () => {
    for (const [url, conn] of appRedis) {
      if (conn.status === 'ready') continue;
      appRedis.delete(url);
      conn.disconnect();
    }
  };

  /** Back to the queue as delayed, without spending an attempt. */
  const postpone = async (job: Job<ActionJobData>, token: string | undefined, delayMs: number): Promise<never> => {
    await job.moveToDelayed(clock() + delayMs, token);
    throw new DelayedError();
  };

  /** Mode policy: the job's row of FIRING_MODES. */
  async function modePolicy(job: Job<ActionJobData>): Promise<FiringMode> {
    const data = job.data;
    const mode = firingMode(data.mode);
    if (!mode) throw new UnrecoverableError(`unknown mode "${data.mode}": the job was written by another version of mallet`);
    const headline = mode.headline?.(data.modeReason);
    if (headline !== undefined) await job.log(headline);
    if (mode.runsNotify && !mode.runsActions && !data.actions.some((a) => a.type === 'notify')) {
      await job.log(`${data.mode}: the rule has no notify action; this job is the record`);
      logger.warn({ jobId: job.id, rule: data.rule, app: data.app, mode: data.mode }, 'actions not run and no notify action to say so');
    }
    return mode;
  }

  /** One of the app + process type's rolling slots, or undefined when all are held. */
  function takeRollingSlot(job: Job<ActionJobData>): Promise<RollingLease | undefined> {
    const data = job.data;
    return RollingLease.take(redis, keys.rolling(data.app, data.processType), job.id!, opts.getLimits().perProcessType.concurrency, clock, logger.child({ app: data.app, processType: data.processType }));
  }

  /**
   * The write of a first step that claimStopKey may send with the claim: a stop key on mallet's
   * own Redis (the key and the job's records in one script, so not on a cluster, where they are
   * in different slots), run by the stock executor, of a run that would go straight to it (no
   * deaths to note or count first, not stopping). Anything else takes the step's own path.
   */
  function firstStopKeyWrite(job: Job<ActionJobData>, token: string | undefined, runsActions: boolean, cancel: AbortSignal | undefined): StopKeyWrite | undefined {
    const first = job.data.actions[0];
    if (token === undefined || !runsActions || first?.type !== 'redis-stop-key' || redis.isCluster) return undefined;
    if (executors.get(first.type) !== stopKeyExecutor) return undefined;
    if (job.stalledCounter > 0 || attemptsSpent(job) >= attemptsAllowed(job) || shutdown.signal.aborted || cancel?.aborted) return undefined;
    try {
      return redisFor(job.data.app)(first.redisUrlRef) === redis ? stopKeyWrite(first) : undefined;
    } catch {
      // A bad URL or key: the step's own run says so.
      return undefined;
    }
  }

  /**
   * The step ledger and, for a job that acts, its rolling slot, read in the same round trip
   * (both come before the first step, and neither depends on the other); without a slot the job
   * waits its turn as delayed. A slot taken while the ledger could not be read is given back.
   * A first step that is a stop key on mallet's Redis is written in that round trip too, when
   * the lock, the ledger and the slot let it run (claimStopKey): `written` is its replies.
   */
  async function ledgerAndLease(job: Job<ActionJobData>, token: string | undefined, runsActions: boolean, cancel?: AbortSignal): Promise<{ ledger: StepLedger; lease: RollingLease | undefined; written?: StopKeyWritten }> {
    const jobId = job.id!;
    const lockKey = `${job.queueQualifiedName}:${jobId}:lock`;
    const write = firstStopKeyWrite(job, token, runsActions, cancel);
    if (write) {
      const data = job.data;
      const rolling = keys.rolling(data.app, data.processType);
      const now = clock();
      const c = await claimStopKey(redis, { lock: lockKey, steps: keys.jobSteps(jobId), rolling }, {
        token: token!, jobId, now, leaseUntil: now + LEASE_MS, concurrency: opts.getLimits().perProcessType.concurrency, write,
      });
      const ledger = StepLedger.opened(redis, keys.jobSteps(jobId), lockKey, token, jobId, c.records, c.claim);
      if (!c.slot) return { ledger, lease: await waitForSlot(job, token, ledger) };
      const lease = RollingLease.taken(redis, rolling, jobId, clock, logger.child({ app: data.app, processType: data.processType }));
      return { ledger, lease, ...(c.written ? { written: c.written } : {}) };
    }
    const [opened, slot] = await Promise.allSettled([
      StepLedger.open(redis, keys.jobSteps(jobId), lockKey, token, jobId),
      runsActions ? takeRollingSlot(job) : Promise.resolve(undefined),
    ]);
    if (opened.status === 'rejected') {
      if (slot.status === 'fulfilled') await slot.value?.end(logger);
      throw opened.reason;
    }
    if (slot.status === 'rejected') throw slot.reason;
    const ledger = opened.value;
    if (!runsActions) return { ledger, lease: undefined };
    return { ledger, lease: slot.value ?? await waitForSlot(job, token, ledger) };
  }

  /** All of the process type's slots are held: the job waits its turn as delayed. */
  async function waitForSlot(job: Job<ActionJobData>, token: string | undefined, ledger: StepLedger): Promise<never> {
    const data = job.data;
    const concurrency = opts.getLimits().perProcessType.concurrency;
    // Looked at again every few seconds: said once, and again only when it says something new.
    const waiting = `waiting: ${concurrency} remediation(s) of ${data.app} ${data.processType} already running (limits.per_process_type)`;
    if (await ledger.noteChanged('waiting', waiting)) await job.log(waiting);
    return postpone(job, token, rollingRetryMs + Math.floor(Math.random() * rollingRetryMs / 4));
  }

  async function processJob(job: Job<ActionJobData>, token: string | undefined, cancel?: AbortSignal): Promise<{ mode: string; steps: StepRecord[] }> {
    const data = job.data;
    const jobId = job.id!;
    const mode = await modePolicy(job);
    if (!mode.runsActions && !mode.runsNotify) {
      for (const [i, action] of data.actions.entries()) {
        await job.log(`step ${i + 1} ${action.type}: ${mode.notRunLine(describeAction(action))}`);
        metrics.actionsTotal.inc({ type: action.type, outcome: mode.notRunOutcome });
      }
      return { mode: data.mode, steps: [] };
    }

    const { ledger, lease, written: firstWritten } = await ledgerAndLease(job, token, mode.runsActions, cancel);
    // A run whose slot lease or job lock was lost stops its waits too.
    const signal = AbortSignal.any([shutdown.signal, ...(lease ? [lease.lost] : []), ...(cancel ? [cancel] : [])]);
    const steps: StepRecord[] = [];
    /** What became of each step, for the failure notice. */
    const results: string[] = data.actions.map((_, i) => {
      const done = ledger.done(String(i));
      return done ? `done: ${done.summary}` : 'not run';
    });
    const shownResults = data.results ?? [];
    /** Back to the queue without spending an attempt; the slot is kept that long. */
    const backToQueue = async (label: string, type: string, why: string, delayMs: number): Promise<never> => {
      await job.log(`${label}: ${why}`);
      metrics.actionsTotal.inc({ type, outcome: 'postponed' });
      lease?.keepFor(delayMs);
      return postpone(job, token, delayMs);
    };
    const interruption = () => (shutdown.signal.aborted ? 'interrupted by shutdown, back to the queue' : 'interrupted (the rolling slot lease or the job lock was lost), back to the queue');
    const stepContext = (label: string, i: number, field: string, action: ResolvedAction): NotifyStepContext => ({
      jobId, app: data.app, rule: data.rule, target: data.target, stepIndex: i, job: data,
      log: async (line) => { await job.log(`${label}: ${line}`); },
      progress: async (p) => { await job.updateProgress({ step: i + 1, of: data.actions.length, type: action.type, ...p }); },
      resolveRef: (ref) => expandRef(ref, opts.env),
      redisFor: redisFor(data.app),
      markSent: () => ledger.markSent(field, clock()),
      unmarkSent: () => ledger.unmarkSent(field),
      signal,
      logger: logger.child({ jobId, step: i + 1, type: action.type }),
      now: clock,
      sleep: (ms) => sleep(ms, signal),
    });

    /** Step ledger + executor run for step i: skipped when an earlier run recorded it, else run once and recorded. */
    async function step(i: number, original: ResolvedAction): Promise<void> {
      const label = `step ${i + 1} ${original.type}`;
      const field = String(i);
      const previous = ledger.done(field);
      if (previous !== undefined) {
        await job.log(`${label}: already done, skipped`);
        metrics.actionsTotal.inc({ type: original.type, outcome: 'skipped' });
        steps.push(previous);
        results[i] = `done: ${previous.summary}`;
        return;
      }
      // Written with the claim (claimStopKey): the key is out, so the step goes on to record it.
      const written = i === 0 ? firstWritten : undefined;
      if (signal.aborted && !written) await backToQueue(label, original.type, interruption(), 0);
      await ledger.claim();
      if (!(original.type === 'notify' ? mode.runsNotify : mode.runsActions)) {
        await job.log(`${label}: ${mode.notRunLine(describeAction(original))}`);
        metrics.actionsTotal.inc({ type: original.type, outcome: mode.notRunOutcome });
        results[i] = mode.notRunLine(describeAction(original));
        return;
      }
      const action: ResolvedAction = original.type === 'notify' ? { ...original, text: notifyTextFor(data, original.text) } : original;
      const executor = executors.get(action.type);
      if (!executor) {
        await job.log(`${label}: failed, no executor for action type "${action.type}" in this worker`);
        metrics.actionsTotal.inc({ type: action.type, outcome: 'failed' });
        throw new FailedForGood(`no executor for action type "${action.type}": this worker was started without it`, i);
      }
      /** Recorded, so a retry skips it; done and not recorded would run again. */
      const record = async (result: StepResult, outcome: 'done' | 'skipped') => {
        const entry: StepRecord = { type: action.type, summary: result.summary, at: clock(), ...(result.warnings?.length ? { warnings: result.warnings } : {}) };
        await ledger.record(field, entry);
        steps.push(entry);
        results[i] = `${outcome}: ${result.summary}`;
        for (const w of result.warnings ?? []) await job.log(`${label}: warning: ${w}`);
        await job.log(`${label}: ${outcome === 'done' ? 'done: ' : ''}${result.summary}`);
        metrics.actionsTotal.inc({ type: action.type, outcome });
      };
      // An earlier run sent this and stopped before recording the answer. The Platform API has
      // no idempotency key and a second restart would kill the requests of the dyno that just
      // came up; if the dyno is still in trouble, the rule fires again after its cooldown.
      const notRepeated = (sentAt: number) => record({
        summary: `not repeated: an earlier attempt sent it at ${new Date(sentAt).toISOString()} and stopped before its answer was recorded`,
        warnings: ['outcome unknown: check the dyno; the rule fires again after its cooldown if the problem remains'],
      }, 'skipped');
      const sentAt = ledger.sentAt(field);
      if (executor.repeatable === false && sentAt !== undefined) return notRepeated(sentAt);

      // Shown on the dashboard only: not waited for, so the step's own write (a stop key) is not
      // one round trip later. Sent first on its connection, so the step's later progress follows it.
      job.updateProgress({ step: i + 1, of: data.actions.length, type: action.type, status: 'running' }).catch(() => {});
      const runner: Executor = written
        ? { type: action.type, run: (a, ctx) => afterStopKeyWrite(a as StopKeyActionSpec, ctx, redis, written) }
        : executor;
      const outcome = await executeStep(runner, action, stepContext(label, i, field, action));
      switch (outcome.kind) {
        case 'done':
          await record(outcome.result, 'done');
          if (i === 0 && mode.runsActions) metrics.triggerLatency.observe(Math.max(0, clock() - data.receivedAt) / 1000);
          return;
        case 'already-sent':
          return notRepeated(outcome.sentAt);
        case 'permanent':
          await job.log(`${label}: failed permanently: ${outcome.message}`);
          metrics.actionsTotal.inc({ type: action.type, outcome: outcome.metricOutcome });
          results[i] = `failed: ${outcome.message}`;
          throw new FailedForGood(`${label}: ${outcome.message}`, i);
        case 'interrupted':
          return backToQueue(label, action.type, interruption(), 0);
        case 'postponed':
          return backToQueue(label, action.type, `postponed: ${outcome.message}`, outcome.delayMs);
        case 'failed': {
          // First, before any I/O: a command that timed out on an app Redis still connecting
          // stays in ioredis's offline queue and would be sent once it connects, on top of the
          // retry's own (the fault suite saw 34 SETs for 30 stop keys). Closing the connection
          // drops the queue; the retry opens a fresh one.
          dropUnreadyAppRedis();
          const last = !willRetry(job, outcome.error);
          await job.log(`${label}: ${last ? 'failed, no attempts left' : 'failed, will retry'}: ${outcome.message}`);
          metrics.actionsTotal.inc({ type: action.type, outcome: last ? 'failed' : 'retry' });
          results[i] = `failed: ${outcome.message}`;
          if (last) throw new FailedForGood(`${label}: ${outcome.message} (no attempts left)`, i);
          throw outcome.error;
        }
      }
    }

    /**
     * Failed for good: the rule's escalation (`on_failure`) runs once, then every notify action
     * of the rule says what happened. Each is recorded in the ledger, so a run that follows a
     * crash here does not send them twice. Their own failures are logged, not thrown: the job
     * fails with the reason of the step that failed.
     */
    async function afterFailure(reason: string, failedStep: number | undefined): Promise<void> {
      const escalation: string[] = [];
      if (mode.runsActions) {
        for (const [k, action] of (data.onFailure ?? []).entries()) {
          escalation.push(await runOnce(`on_failure ${k + 1} ${action.type}`, `on_failure:${k}`, data.actions.length + k, action));
        }
      }
      const text = failureText(data, reason, data.actions.map((a, i) => `${describeAction(a)}: ${results[i]}`), escalation);
      for (const [i, action] of data.actions.entries()) {
        if (action.type !== 'notify' || i === failedStep) continue;
        await runOnce(`failure notify ${i + 1}`, `failure-notify:${i}`, i, { ...action, text });
      }
    }

    /** Runs a follow-up action once per job (by ledger field), whatever becomes of it; returns its result line. */
    async function runOnce(label: string, field: string, index: number, action: ResolvedAction): Promise<string> {
      const previous = ledger.done(field);
      if (previous !== undefined) return `${describeAction(action)}: ${previous.summary}`;
      const executor = executors.get(action.type);
      let summary: string;
      if (!executor) {
        summary = `failed: no executor for action type "${action.type}" in this worker`;
      } else if (executor.repeatable === false && ledger.sentAt(field) !== undefined) {
        summary = 'not repeated: an earlier run sent it and stopped before its answer was recorded';
      } else {
        const outcome = await executeStep(executor, action, stepContext(label, index, field, action));
        summary = outcome.kind === 'done' ? `done: ${outcome.result.summary}`
          : outcome.kind === 'already-sent' ? 'not repeated: an earlier run sent it'
          : outcome.kind === 'interrupted' ? 'interrupted by shutdown'
          : `failed: ${outcome.message}`;
        metrics.actionsTotal.inc({ type: action.type, outcome: outcome.kind === 'done' ? 'done' : 'failed' });
      }
      await job.log(`${label}: ${summary}`);
      await ledger.record(field, { type: action.type, summary, at: clock() }).catch(() => {});
      return `${describeAction(action)}: ${summary}`;
    }

    try {
      const deaths = job.stalledCounter;
      if (deaths > 0 && await ledger.noteChanged('stalls', String(deaths))) {
        await job.log(`resumed: the worker running this job stopped without finishing it (${deaths} time(s); each counts as an attempt)`);
      }
      if (attemptsSpent(job) >= attemptsAllowed(job)) {
        throw new FailedForGood(`the workers running this job died ${deaths} time(s) (stalled); no attempts left`, undefined);
      }
      for (const [i, action] of data.actions.entries()) await step(i, action);
      await job.updateProgress({ step: data.actions.length, of: data.actions.length, status: 'done' });
      if (job.attemptsMade > 0 || deaths > 0) await truthfulSuccess(job);
      return { mode: data.mode, steps };
    } catch (err) {
      if (err instanceof JobLockLostError) {
        // The run that has the job now also has its slot, and writes its data.
        lease?.abandon();
        results.splice(0, results.length, ...shownResults);
        logger.warn({ jobId, rule: data.rule, app: data.app }, err.message);
        throw err;
      }
      if (err instanceof FailedForGood) {
        await afterFailure(err.message, err.step);
        // UnrecoverableError: BullMQ counts only its own attempts, this one counts the deaths too.
        throw new UnrecoverableError(err.message);
      }
      if (willRetry(job, err)) {
        // A retried remediation is half done (a failed step, or a record that could not be
        // written): the slot stays through the backoff.
        lease?.keepFor(backoffMs(job));
      }
      throw err;
    } finally {
      await lease?.end(logger);
      // Shown at the top of the job's data on the dashboard; best effort, the log has it all.
      if (results.some((r, i) => r !== shownResults[i])) {
        // fired, trigger, results first: the dashboard shows the data in this order.
        const { fired, trigger, results: _shown, ...rest } = data;
        await job.updateData({ fired, trigger, results, ...rest }).catch(() => {});
      }
    }
  }

  /**
   * BullMQ keeps the failed reason of an earlier attempt on a job that then succeeds; the audit
   * must not show a done job as failed. The log keeps the history.
   */
  async function truthfulSuccess(job: Job<ActionJobData>): Promise<void> {
    if (job.failedReason) await job.log(`done after ${job.attemptsMade + 1} attempt(s); an earlier one failed: ${job.failedReason}`);
    await redis.hdel(`${job.queueQualifiedName}:${job.id}`, 'failedReason', 'stacktrace').catch(() => {});
  }

  const workerConnection = logRedisErrors(duplicateRedis(opts.connection, { maxRetriesPerRequest: null }), logger, 'worker');
  const worker = new Worker<ActionJobData>(ACTION_QUEUE, processJob, {
    connection: workerConnection,
    prefix: opts.queuePrefix,
    concurrency: opts.concurrency ?? WORKER_CONCURRENCY,
    // Deaths are counted against the job's attempts in processJob (attemptsSpent), where the
    // last one is failed and notified like any failure; BullMQ's own limit would fail it silently.
    maxStalledCount: UNLIMITED_STALLS,
    ...(opts.lockDuration !== undefined ? { lockDuration: opts.lockDuration } : {}),
    ...(opts.stalledInterval !== undefined ? { stalledInterval: opts.stalledInterval } : {}),
  });
  worker.on('failed', (job, err) => {
    if (job && !(err instanceof DelayedError) && err.name !== 'DelayedError') {
      logger.warn({ jobId: job.id, rule: job.data.rule, app: job.data.app, attemptsMade: job.attemptsMade, err: err.message }, 'action job attempt failed');
    }
  });
  // BullMQ could not extend a job's lock (Redis away past lockDuration): its run stops acting,
  // because the stalled-job check may hand the job to another run.
  worker.on('lockRenewalFailed', (jobIds) => { for (const id of jobIds) worker.cancelJob(id, 'lock renewal failed'); });
  worker.on('completed', (job) => logger.info({ jobId: job.id, rule: job.data.rule, app: job.data.app, mode: job.data.mode }, 'action job done'));
  // Connection errors (they carry a code) are logged, throttled, by the connection itself.
  worker.on('error', (err: Error & { code?: string }) => { if (!err.code) logger.error({ err: err.message }, 'action worker error'); });

  let closed: Promise<void> | undefined;
  const close = (timeoutMs = 20_000): Promise<void> => {
    closed ??= (async () => {
      // With mallet's Redis away no job can record a step or complete: waiting would only delay
      // the exit; BullMQ's stalled-job check hands them to a worker once Redis is back.
      const waitMs = workerConnection.status === 'ready' ? timeoutMs : 0;
      const graceful = worker.close();
      graceful.catch(() => {});
      if (!(await within(graceful, waitMs))) {
        // Long waits (Sidekiq quiet) stop and put their job back as delayed; what still runs after
        // that is abandoned to BullMQ's stalled-job check, which hands it to another worker.
        shutdown.abort();
        if (!(await within(graceful, 2000))) await within(worker.close(true), 2000);
      }
      for (const conn of appRedis.values()) conn.disconnect();
      redis.disconnect();
      workerConnection.disconnect();
    })();
    return closed;
  };
  return { worker, close };
}

function backoffMs(job: Job): number {
  const backoff = job.opts.backoff;
  const delay = typeof backoff === 'number' ? backoff : backoff?.delay ?? 0;
  const type = typeof backoff === 'object' ? backoff.type : 'fixed';
  return type === 'exponential' ? 2 ** job.attemptsMade * delay : delay;
}

/**
 * A worker death (stalled job) spends an attempt like a failure does: BullMQ counts them apart
 * (its default fails a job after one second stall, losing the trigger), mallet counts both, so a
 * trigger survives as many process deaths as it has attempts.
 */
function attemptsSpent(job: Job): number {
  return job.attemptsMade + job.stalledCounter;
}

function attemptsAllowed(job: Job): number {
  return job.opts.attempts ?? 1;
}

function willRetry(job: Job, err: unknown): boolean {
  if (err instanceof UnrecoverableError || err instanceof FailedForGood || err instanceof DelayedError || (err as Error)?.name === 'DelayedError') return false;
  return attemptsSpent(job) + 1 < attemptsAllowed(job);
}

/** A step failed and will not be retried (permanent, or no attempts left): the escalation and the failure notice follow. */
class FailedForGood extends Error {
  override readonly name = 'FailedForGood';
  constructor(message: string, readonly step: number | undefined) {
    super(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal.reason); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether `p` settles within `ms` (a rejection counts as settled). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return (await withDeadline(p.then(() => true, () => true), ms)) !== 'timeout';
}
