import { randomBytes } from 'node:crypto';
import { Job, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withDeadline } from '../deadline.js';
import { systemClock, type Clock } from '../clock.js';
import { MalletError } from '../errors.js';
import { ACTION_QUEUE, type RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing, FiringOutcome, FiringSink } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { actionJobName, dashboardFields, type ActionJobData } from './ActionJob.js';
import { FIRING_MODES, type ActionMode } from './FiringMode.js';
import { admitFiring } from './scripts/admitFiring.js';
import { duplicateRedis, logRedisErrors } from '../redisClient.js';
import { decideMode, type ModeDecision } from './decideMode.js';
import { silenceMatcher, type Silence } from '../console/Silence.js';

export interface ActionQueueOptions {
  /** mallet's own Redis; the queue works on a duplicate of it. */
  connection: Redis;
  queuePrefix: string;
  keys: RedisKeys;
  metrics: Metrics;
  logger: Logger;
  /** MALLET_DRY_RUN: every firing is recorded, nothing executed. */
  dryRun: boolean;
  getLimits: () => Limits;
  /** The silences in force (once per submit; the service keeps them in memory, silenceCache.ts); absent: none. */
  getSilences?: () => Promise<readonly Silence[]>;
  clock?: Clock;
  /** submit() rejects after this long, so the drain can answer 503 inside logplex's 5 s. */
  submitTimeoutMs?: number;
  /** Base delay of the exponential step backoff (2^(n-1) × this). */
  backoffMs?: number;
  attempts?: number;
}

const DAY_S = 24 * 3600;

/**
 * The durable side of the FiringSink: every firing becomes one `mallet-actions` job whose id is
 * the firing id, after the storm guard and flapping limits decided its mode (SPEC §4 `limits`, §5).
 */
export class ActionQueue implements FiringSink {
  readonly queue: Queue<ActionJobData>;
  private readonly redis: Redis;
  private readonly clock: Clock;
  /** Every job's options; the jobs are built here (store()), not by Queue.add. */
  private readonly jobOptions: JobsOptions;

  constructor(private readonly opts: ActionQueueOptions) {
    this.clock = opts.clock ?? systemClock;
    this.redis = logRedisErrors(duplicateRedis(opts.connection), opts.logger, 'queue');
    this.jobOptions = {
      attempts: opts.attempts ?? 8,
      backoff: { type: 'exponential', delay: opts.backoffMs ?? 2000 },
      removeOnComplete: { age: 30 * DAY_S },
      removeOnFail: { age: 90 * DAY_S },
      // The failed reason says what went wrong; mallet's stack frames only clutter the dashboard.
      stackTraceLimit: 0,
    };
    this.queue = new Queue<ActionJobData>(ACTION_QUEUE, { connection: this.redis, prefix: opts.queuePrefix, defaultJobOptions: this.jobOptions });
    // Connection errors (they carry a code) are logged, throttled, by the connection itself.
    this.queue.on('error', (err: Error & { code?: string }) => { if (!err.code) opts.logger.error({ err: err.message }, 'action queue error'); });
  }

  /** The queue's own connection (it reconnects on its own after a Redis restart): /readyz pings it, start waits for it. */
  get connection(): Redis {
    return this.redis;
  }

  async submit(firings: readonly Firing[]): Promise<readonly FiringOutcome[]> {
    if (firings.length === 0) return [];
    const timeoutMs = this.opts.submitTimeoutMs ?? 4000;
    let outcomes: readonly FiringOutcome[] | 'timeout';
    try {
      outcomes = await withDeadline(this.store(firings), timeoutMs);
    } catch (err) {
      throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store firings: ${(err as Error).message}`);
    }
    if (outcomes === 'timeout') throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store ${firings.length} firing(s) within ${timeoutMs} ms`);
    return outcomes;
  }

  /**
   * Two round trips for any number of firings: their admissions (one script call each, sent
   * together), then every job's add and its read-back in one pipeline. The silences come from
   * memory while their cache is valid (silenceCache.ts).
   */
  private async store(firings: readonly Firing[]): Promise<readonly FiringOutcome[]> {
    const silenced = silenceMatcher(await this.opts.getSilences?.() ?? [], this.clock());
    const now = this.clock();
    const decided = await Promise.all(firings.map(async (firing) => {
      const submission = randomBytes(8).toString('hex');
      const { mode, reason } = await this.decide(firing, now, submission, silenced(firing));
      const data: ActionJobData = { ...dashboardFields(firing), ...firing, mode, ...(reason ? { modeReason: reason } : {}), submittedAt: now, submission };
      return { firing, mode, submission, job: new Job<ActionJobData>(this.queue, actionJobName(firing), data, { ...this.jobOptions, jobId: firing.id }, firing.id) };
    }));
    const client = await this.queue.backend.client;
    try {
      return await this.addAndReadBack(client, decided, true);
    } catch (err) {
      // A Redis that restarted forgot BullMQ's scripts, and a pipeline's EVALSHA does not load
      // them again as a lone command does: the adds are sent again (a job id is added once).
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return this.addAndReadBack(client, decided, false);
    }
  }

  private async addAndReadBack(client: Awaited<Queue['backend']['client']>, decided: ReadonlyArray<{ firing: Firing; mode: ActionMode; submission: string; job: Job<ActionJobData> }>, pipelined: boolean): Promise<readonly FiringOutcome[]> {
    if (!pipelined) for (const { job } of decided) await job.addJob(client);
    const pipeline = client.pipeline();
    // BullMQ ignores an add whose jobId exists (a retried frame, another replica), so each add is
    // followed on the same connection by a read of the stored data: another submission id there
    // means an earlier add won. Each command is queued synchronously, as BullMQ's own addBulk does.
    if (pipelined) for (const { job } of decided) job.addJob(pipeline).catch(() => {});
    // A proxy of the ioredis pipeline: commands BullMQ does not declare pass through to it.
    const reads = pipeline as unknown as { hget(key: string, field: string): unknown };
    for (const { firing } of decided) reads.hget(this.queue.toKey(firing.id), 'data');
    const replies = await pipeline.exec();
    const adds = pipelined ? decided.length : 0;
    if (!replies || replies.length !== adds + decided.length) throw new Error('the job adds got no reply');
    // Every reply checked before any firing is counted: a later add failing (NOSCRIPT, then sent
    // again; or a 503 and logplex's retry) must not leave the earlier ones counted twice.
    decided.forEach(({ firing }, i) => {
      if (pipelined) {
        const [addErr, added] = replies[i]!;
        if (addErr) throw addErr;
        if (typeof added === 'number' && added < 0) throw new Error(`BullMQ refused job ${firing.id} (code ${added})`);
      }
      const [readErr] = replies[adds + i]!;
      if (readErr) throw readErr;
    });
    return decided.map(({ firing, mode, submission }, i) => {
      const stored = replies[adds + i]![1];
      const outcome: FiringOutcome = typeof stored === 'string' && storedSubmission(stored) !== submission ? 'duplicate' : FIRING_MODES[mode].firingOutcome;
      this.opts.metrics.firingsTotal.inc({ rule: firing.rule, outcome });
      this.opts.logger.info({ jobId: firing.id, rule: firing.rule, app: firing.app, target: firing.target, outcome }, 'firing stored');
      return outcome;
    });
  }

  private decide(firing: Firing, now: number, submission: string, silence: Silence | undefined): Promise<ModeDecision> {
    return decideMode(firing, now, {
      limits: this.opts.getLimits(),
      keys: this.opts.keys,
      globalDryRun: this.opts.dryRun,
      silence,
      submission,
      admit: (keys, id, at, limits, record, preset) => admitFiring(this.redis, keys, id, at, limits, record, preset),
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

/** The submission id in a stored job's data ('' when it cannot be read: then it is not ours). */
function storedSubmission(json: string): string {
  try {
    return String((JSON.parse(json) as { submission?: unknown }).submission ?? '');
  } catch {
    return '';
  }
}
