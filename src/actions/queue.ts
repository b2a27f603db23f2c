import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
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
import { FIRING_MODES } from './FiringMode.js';
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
  /** The silences in force (read once per submit); absent: none. */
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

  constructor(private readonly opts: ActionQueueOptions) {
    this.clock = opts.clock ?? systemClock;
    this.redis = logRedisErrors(duplicateRedis(opts.connection), opts.logger, 'queue');
    this.queue = new Queue<ActionJobData>(ACTION_QUEUE, {
      connection: this.redis,
      prefix: opts.queuePrefix,
      defaultJobOptions: {
        attempts: opts.attempts ?? 8,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? 2000 },
        removeOnComplete: { age: 30 * DAY_S },
        removeOnFail: { age: 90 * DAY_S },
        // The failed reason says what went wrong; mallet's stack frames only clutter the dashboard.
        stackTraceLimit: 0,
      },
    });
    // Connection errors (they carry a code) are logged, throttled, by the connection itself.
    this.queue.on('error', (err: Error & { code?: string }) => { if (!err.code) opts.logger.error({ err: err.message }, 'action queue error'); });
  }

  async submit(firings: readonly Firing[]): Promise<readonly FiringOutcome[]> {
    if (firings.length === 0) return [];
    const timeoutMs = this.opts.submitTimeoutMs ?? 4000;
    let outcomes: readonly FiringOutcome[] | 'timeout';
    try {
      outcomes = await withDeadline((async () => {
        const silenced = silenceMatcher(await this.opts.getSilences?.() ?? [], this.clock());
        return Promise.all(firings.map((f) => this.submitOne(f, silenced(f))));
      })(), timeoutMs);
    } catch (err) {
      throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store firings: ${(err as Error).message}`);
    }
    if (outcomes === 'timeout') throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store ${firings.length} firing(s) within ${timeoutMs} ms`);
    return outcomes;
  }

  private async submitOne(firing: Firing, silence: Silence | undefined): Promise<FiringOutcome> {
    const now = this.clock();
    const submission = randomBytes(8).toString('hex');
    const { mode, reason } = await this.decide(firing, now, submission, silence);
    const data: ActionJobData = { ...dashboardFields(firing), ...firing, mode, ...(reason ? { modeReason: reason } : {}), submittedAt: now, submission };
    await this.queue.add(actionJobName(firing), data, { jobId: firing.id });
    // BullMQ ignores an add whose jobId exists and still returns a Job holding our data, so the
    // stored job is read back: another submission id means an earlier add won.
    const stored = await this.queue.getJob(firing.id);
    const outcome: FiringOutcome = stored && stored.data.submission !== submission ? 'duplicate' : FIRING_MODES[mode].firingOutcome;
    this.opts.metrics.firingsTotal.inc({ rule: firing.rule, outcome });
    this.opts.logger.info({ jobId: firing.id, rule: firing.rule, app: firing.app, target: firing.target, outcome }, 'firing stored');
    return outcome;
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

