import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { ACTION_QUEUE, type RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { ResolvedAction } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import type { ActionJobData } from './ActionJob.js';
import { expandRef } from './envRef.js';
import { AlreadySentError, JobLockLostError, PermanentStepError, type Executor, type StepResult } from './Executor.js';
import { defaultExecutors } from './executors/index.js';
import type { NotifyStepContext } from './executors/notify.js';
import { describeAction, notifyTextFor } from './notifyText.js';
import { RetryLaterError } from './RetryLaterError.js';
import { acquireRollingSlot, releaseRollingSlot, renewRollingSlot } from './scripts/rollingSlot.js';
import { claimStep } from './scripts/claimStep.js';
import { withDeadline } from '../deadline.js';
import { logRedisErrors } from '../redisClient.js';

export interface ActionWorkerOptions {
  /** mallet's own Redis (queue, limits, steps; stop keys when no app Redis is configured). */
  connection: Redis;
  queuePrefix: string;
  keys: RedisKeys;
  metrics: Metrics;
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

export interface ActionWorker {
  readonly worker: Worker<ActionJobData>;
  /** Stops taking jobs and lets running ones finish; past the timeout they go back to the queue. */
  close(timeoutMs?: number): Promise<void>;
}

export interface StepRecord {
  readonly type: ResolvedAction['type'];
  readonly summary: string;
  readonly at: number;
  readonly warnings?: readonly string[];
}

const NINETY_DAYS_S = 90 * 24 * 3600;
/** How long a rolling slot is held without renewal (a dead worker's slot frees after it). */
const LEASE_MS = 60_000;

/** Runs `mallet-actions` jobs: each action a step, run once, in order (SPEC §5, §6). */
export function startActionWorker(opts: ActionWorkerOptions): ActionWorker {
  const clock = opts.clock ?? systemClock;
  const { keys, metrics, logger } = opts;
  const redis = logRedisErrors(opts.connection.duplicate(), logger, 'worker-state');
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
        connectTimeout: 5000,
        ...(url.startsWith('rediss://') && opts.redisTlsInsecure ? { tls: { rejectUnauthorized: false } } : {}),
      });
      // The URL may hold a password: log that it failed, not where.
      conn.on('error', (err: Error & { code?: string }) => logger.warn({ app, code: err.code }, 'app Redis connection error'));
      appRedis.set(url, conn);
    }
    return conn;
  };

  async function processJob(job: Job<ActionJobData>, token: string | undefined, cancel?: AbortSignal): Promise<{ mode: string; steps: StepRecord[] }> {
    const data = job.data;
    const jobId = job.id!;
    // A run whose slot lease or job lock was lost stops its waits too.
    const lost = new AbortController();
    const signal = AbortSignal.any([shutdown.signal, lost.signal, ...(cancel ? [cancel] : [])]);
    const stepsKey = keys.jobSteps(jobId);
    const lockKey = `${job.queueQualifiedName}:${jobId}:lock`;
    // Each step (and each mark of a step as sent) first checks that this run still holds the
    // job's lock: after a long Redis outage BullMQ may hand the job to another run while this one
    // still works, and two runs must not both act.
    const claim = async (field = '', value = ''): Promise<void> => {
      if (token === undefined) return;
      const r = await claimStep(redis, lockKey, stepsKey, token, field, value, NINETY_DAYS_S);
      if (r === 'lock-lost') throw new JobLockLostError(`job ${jobId}: this run lost its lock to another run; stopping without acting`);
      if (r === 'already-marked') throw new AlreadySentError(Number(await redis.hget(stepsKey, field)));
    };
    const recorded = await redis.hgetall(stepsKey);
    const steps: StepRecord[] = [];

    if (data.mode === 'silenced') {
      // A silence says "leave it alone": not even notify runs (the history and the job are the record).
      for (const [i, action] of data.actions.entries()) {
        await job.log(`step ${i + 1} ${action.type}: silenced (${data.modeReason ?? ''}), did not ${describeAction(action)}`);
        metrics.actionsTotal.inc({ type: action.type, outcome: 'silenced' });
      }
      return { mode: data.mode, steps };
    }
    if (data.mode === 'dry_run') {
      for (const [i, action] of data.actions.entries()) {
        await job.log(`step ${i + 1} ${action.type}: dry run, would ${describeAction(action)}`);
        metrics.actionsTotal.inc({ type: action.type, outcome: 'dry_run' });
      }
      return { mode: data.mode, steps };
    }

    const held = data.mode === 'held' || data.mode === 'flapping';
    if (held) {
      await job.log(`${data.mode}: ${data.modeReason ?? ''}; only notify actions run`);
      if (!data.actions.some((a) => a.type === 'notify')) {
        await job.log(`${data.mode}: the rule has no notify action; this job is the record`);
        logger.warn({ jobId, rule: data.rule, app: data.app, mode: data.mode }, 'actions held and no notify action to say so');
      }
    }

    const rollingKey = keys.rolling(data.app, data.processType);
    // Set while this run holds a rolling slot.
    let renew: NodeJS.Timeout | undefined;
    if (!held) {
      const concurrency = opts.getLimits().perProcessType.concurrency;
      if (!(await acquireRollingSlot(redis, rollingKey, jobId, Date.now(), Date.now() + LEASE_MS, concurrency))) {
        await job.log(`waiting: ${concurrency} remediation(s) of ${data.app} ${data.processType} already running (limits.per_process_type)`);
        await job.moveToDelayed(Date.now() + rollingRetryMs + Math.floor(Math.random() * rollingRetryMs / 4), token);
        throw new DelayedError();
      }
      renew = setInterval(() => {
        // Only extends a lease still held: one that ran out may already be another job's slot.
        renewRollingSlot(redis, rollingKey, jobId, Date.now() + LEASE_MS)
          .then((held) => {
            if (held || lost.signal.aborted) return;
            logger.warn({ jobId, app: data.app, processType: data.processType }, 'the rolling slot lease ran out (mallet\'s Redis was unreachable too long): stopping this run');
            lost.abort();
          })
          .catch((err: Error) => logger.warn({ jobId, err: err.message }, 'could not renew the rolling slot'));
      }, LEASE_MS / 3);
      renew.unref();
    }

    let keepSlotMs: number | undefined;
    let lockLost = false;
    /** Back to the queue as delayed, without spending an attempt (the slot is kept that long). */
    const backToQueue = async (label: string, type: string, why: string, delayMs: number): Promise<never> => {
      await job.log(`${label}: ${why}`);
      metrics.actionsTotal.inc({ type, outcome: 'postponed' });
      keepSlotMs = delayMs;
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError();
    };
    const interruption = () => (shutdown.signal.aborted ? 'interrupted by shutdown, back to the queue' : 'interrupted (the rolling slot lease or the job lock was lost), back to the queue');
    try {
      for (const [i, original] of data.actions.entries()) {
        const label = `step ${i + 1} ${original.type}`;
        const previous = recorded[String(i)];
        if (previous !== undefined) {
          await job.log(`${label}: already done, skipped`);
          metrics.actionsTotal.inc({ type: original.type, outcome: 'skipped' });
          steps.push(JSON.parse(previous) as StepRecord);
          continue;
        }
        if (signal.aborted) await backToQueue(label, original.type, interruption(), 0);
        await claim();
        if (held && original.type !== 'notify') {
          await job.log(`${label}: ${data.mode}, did not ${describeAction(original)}`);
          metrics.actionsTotal.inc({ type: original.type, outcome: data.mode });
          continue;
        }
        const action: ResolvedAction = original.type === 'notify' ? { ...original, text: notifyTextFor(data, original.text) } : original;
        const executor = executors.get(action.type);
        if (!executor) {
          await job.log(`${label}: failed, no executor for action type "${action.type}" in this worker`);
          metrics.actionsTotal.inc({ type: action.type, outcome: 'failed' });
          throw new UnrecoverableError(`no executor for action type "${action.type}": this worker was started without it`);
        }
        const startedField = `${i}:started`;
        /** Recorded, so a retry skips it; done and not recorded would run again. */
        const recordStep = async (result: StepResult, outcome: 'done' | 'skipped') => {
          const record: StepRecord = { type: action.type, summary: result.summary, at: clock(), ...(result.warnings?.length ? { warnings: result.warnings } : {}) };
          await persist(() => redis.multi().hset(stepsKey, String(i), JSON.stringify(record)).expire(stepsKey, NINETY_DAYS_S).exec());
          steps.push(record);
          for (const w of result.warnings ?? []) await job.log(`${label}: warning: ${w}`);
          await job.log(`${label}: ${outcome === 'done' ? 'done: ' : ''}${result.summary}`);
          metrics.actionsTotal.inc({ type: action.type, outcome });
        };
        // An earlier run sent this and stopped before recording the answer. The Platform API has
        // no idempotency key and a second restart would kill the requests of the dyno that just
        // came up; if the dyno is still in trouble, the rule fires again after its cooldown.
        const notRepeated = (sentAt: number) => recordStep({
          summary: `not repeated: an earlier attempt sent it at ${new Date(sentAt).toISOString()} and stopped before its answer was recorded`,
          warnings: ['outcome unknown: check the dyno; the rule fires again after its cooldown if the problem remains'],
        }, 'skipped');
        if (executor.repeatable === false && recorded[startedField] !== undefined) {
          await notRepeated(Number(recorded[startedField]));
          continue;
        }
        await job.updateProgress({ step: i + 1, of: data.actions.length, type: action.type, status: 'running' });
        let result: StepResult;
        try {
          const ctx: NotifyStepContext = {
            jobId, app: data.app, rule: data.rule, target: data.target, stepIndex: i, job: data,
            log: async (line) => { await job.log(`${label}: ${line}`); },
            progress: async (p) => { await job.updateProgress({ step: i + 1, of: data.actions.length, type: action.type, ...p }); },
            resolveRef: (ref) => expandRef(ref, opts.env),
            redisFor: redisFor(data.app),
            markSent: () => claim(startedField, String(clock())),
            unmarkSent: async () => { await redis.hdel(stepsKey, startedField); },
            signal,
            logger: logger.child({ jobId, step: i + 1, type: action.type }),
            now: clock,
            sleep: (ms) => sleep(ms, signal),
          };
          result = await executor.run(action, ctx);
        } catch (err) {
          // A step marked sent stays marked unless its executor unmarked it: what it sent may have
          // had its effect, and the next run records "not repeated" instead of sending it again.
          if (err instanceof AlreadySentError) {
            await notRepeated(err.sentAt);
            continue;
          }
          if (err instanceof JobLockLostError) throw err;
          const message = errorMessage(err);
          if (err instanceof PermanentStepError) {
            await job.log(`${label}: failed permanently: ${message}`);
            metrics.actionsTotal.inc({ type: action.type, outcome: 'failed' });
            throw new UnrecoverableError(`${label}: ${message}`);
          }
          if (signal.aborted) await backToQueue(label, action.type, interruption(), 0);
          if (err instanceof RetryLaterError) await backToQueue(label, action.type, `postponed: ${message}`, err.delayMs);
          const last = !willRetry(job, err);
          await job.log(`${label}: ${last ? 'failed, no attempts left' : 'failed, will retry'}: ${message}`);
          metrics.actionsTotal.inc({ type: action.type, outcome: last ? 'failed' : 'retry' });
          throw err;
        }
        await recordStep(result, 'done');
        if (i === 0 && !held) metrics.triggerLatency.observe(Math.max(0, clock() - data.receivedAt) / 1000);
      }
      await job.updateProgress({ step: data.actions.length, of: data.actions.length, status: 'done' });
      return { mode: data.mode, steps };
    } catch (err) {
      if (err instanceof JobLockLostError) {
        lockLost = true;
        logger.warn({ jobId, rule: data.rule, app: data.app }, err.message);
      } else if (keepSlotMs === undefined && willRetry(job, err)) {
        // A retried remediation is half done (a failed step, or a record that could not be
        // written): the slot stays through the backoff.
        keepSlotMs = backoffMs(job);
      }
      throw err;
    } finally {
      if (renew) clearInterval(renew);
      // A run that lost its lock leaves the slot to the run that has the job now.
      if (renew !== undefined && !lockLost) {
        // A remediation that will be retried keeps its slot through the backoff, so a second dyno
        // of the same type is not taken down while the first is half done.
        const release = keepSlotMs === undefined
          ? releaseRollingSlot(redis, rollingKey, jobId)
          : renewRollingSlot(redis, rollingKey, jobId, Date.now() + keepSlotMs + LEASE_MS);
        await release.catch((err: Error) => logger.warn({ jobId, err: err.message }, 'could not release the rolling slot'));
      }
    }
  }

  const workerConnection = logRedisErrors(opts.connection.duplicate({ maxRetriesPerRequest: null }), logger, 'worker');
  const worker = new Worker<ActionJobData>(ACTION_QUEUE, processJob, {
    connection: workerConnection,
    prefix: opts.queuePrefix,
    concurrency: opts.concurrency ?? 4,
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

function willRetry(job: Job, err: unknown): boolean {
  if (err instanceof UnrecoverableError || err instanceof DelayedError || (err as Error)?.name === 'DelayedError') return false;
  return job.attemptsMade + 1 < (job.opts.attempts ?? 1);
}

/** A small idempotent Redis write that must not be lost to a passing error: tried up to 5 times. */
async function persist(write: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await write();
      return;
    } catch (err) {
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 1000);
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
