import { randomBytes } from 'node:crypto';
import { Job, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withDeadline } from '../deadline.js';
import { systemClock, type Clock } from '../clock.js';
import { MalletError } from '../errors.js';
import { ACTION_QUEUE, type RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Firing, FiringAdmission, FiringOutcome, FiringSink } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { actionJobName, dashboardFields, type ActionJobData } from './ActionJob.js';
import { FIRING_MODES } from './FiringMode.js';
import { admitFiring } from './scripts/admitFiring.js';
import { BodyAdmission } from './bodyAdmission.js';
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
  /**
   * The same, without waiting: undefined while they are not in memory. Absent with getSilences:
   * a drain body's firings are admitted by submit(), not in its body script (admission()).
   */
  silencesInMemory?: () => readonly Silence[] | undefined;
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
    // Not auto-pipelined: an auto-pipelined command waits for setImmediate, i.e. until every I/O
    // callback of the event loop's turn has run (other bodies parsed and judged), and behind the
    // connection's previous auto-pipeline still in flight; a firing's admission is on the path
    // to its stop key. Its adds were an explicit pipeline already.
    this.redis = logRedisErrors(duplicateRedis(opts.connection, { autoPipelining: false }), opts.logger, 'queue');
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

  /**
   * A drain body's admissions in its body script (bodyAdmission.ts): the firings it admitted
   * skip store()'s admission round trip. Only while the silences are in memory, as store() would
   * read them (the script's parts are made synchronously).
   */
  admission(): BodyAdmission | undefined {
    const { getSilences, silencesInMemory } = this.opts;
    const silences = silencesInMemory ? silencesInMemory() : getSilences ? undefined : [];
    if (silences === undefined) return undefined;
    return new BodyAdmission({ keys: this.opts.keys, limits: this.opts.getLimits(), globalDryRun: this.opts.dryRun, silences, now: this.clock() });
  }

  async submit(firings: readonly Firing[], admission?: FiringAdmission): Promise<readonly FiringOutcome[]> {
    if (firings.length === 0) return [];
    const timeoutMs = this.opts.submitTimeoutMs ?? 4000;
    let outcomes: readonly FiringOutcome[] | 'timeout';
    try {
      outcomes = await withDeadline(this.store(firings, admission instanceof BodyAdmission ? admission : undefined), timeoutMs);
    } catch (err) {
      throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store firings: ${(err as Error).message}`);
    }
    if (outcomes === 'timeout') throw new MalletError('MALLET_STORE_UNAVAILABLE', `could not store ${firings.length} firing(s) within ${timeoutMs} ms`);
    return outcomes;
  }

  /**
   * Two round trips for any number of firings: their admissions (one script call each, sent
   * together), then every job's add and its read-back in one pipeline. The silences come from
   * memory while their cache is valid (silenceCache.ts). One when the body script admitted
   * them all (`admitted`, bodyAdmission.ts): the adds only.
   */
  private async store(firings: readonly Firing[], admitted?: BodyAdmission): Promise<readonly FiringOutcome[]> {
    const pending = admitted === undefined ? firings : firings.filter((f) => admitted.decision(f.id) === undefined);
    const silenced = pending.length === 0 ? undefined : silenceMatcher(await this.opts.getSilences?.() ?? [], this.clock());
    const now = this.clock();
    const decided = await Promise.all(firings.map(async (firing) => {
      const submission = admitted?.submission ?? randomBytes(8).toString('hex');
      const { mode, reason } = admitted?.decision(firing.id) ?? await this.decide(firing, now, submission, silenced!(firing));
      const data: ActionJobData = { ...dashboardFields(firing), ...firing, mode, ...(reason ? { modeReason: reason } : {}), submittedAt: now, submission };
      return { firing, mode, submission, job: new Job<ActionJobData>(this.queue, actionJobName(firing), data, { ...this.jobOptions, jobId: firing.id }, firing.id) };
    }));
    const client = await this.queue.backend.client;
    const pipeline = client.pipeline();
    // BullMQ ignores an add whose jobId exists (a retried frame, another replica), so each add is
    // followed on the same connection by a read of the stored data: another submission id there
    // means an earlier add won. Each command is queued synchronously, as BullMQ's own addBulk does.
    for (const { job } of decided) job.addJob(pipeline).catch(() => {});
    const replies = await this.readBack(pipeline, decided.map(({ firing }) => firing.id));
    const adds = decided.length;
    if (!replies || replies.length !== adds + decided.length) throw new Error('the job adds got no reply');
    // Every reply checked before any firing is counted: a later add failing (a 503 and logplex's
    // retry) must not leave the earlier ones counted twice.
    decided.forEach(({ firing }, i) => {
      const [addErr, added] = replies[i]!;
      if (addErr) throw addErr;
      if (typeof added === 'number' && added < 0) throw new Error(`BullMQ refused job ${firing.id} (code ${added})`);
      const [readErr] = replies[adds + i]!;
      if (readErr) throw readErr;
    });
    // A read that found no job: its add had not run yet. Scripts gone from Redis (a restart, a
    // failover, SCRIPT FLUSH) make the adds' EVALSHA fail NOSCRIPT, and ioredis sends such a
    // command again by itself (as EVAL), after the pipeline's other commands, so the read went
    // first; the pipeline's reply is the resent add's, and exec() resolved after it, so a second
    // read now sees which add won (without it, two replicas racing both counted it enqueued).
    const late = decided.flatMap(({ firing }, i) => (replies[adds + i]![1] === null ? [firing.id] : []));
    const again = late.length === 0 ? [] : await this.readBack(client.pipeline(), late);
    if (!again || again.length !== late.length) throw new Error('the job read-back got no reply');
    for (const [err] of again) if (err) throw err;
    let next = 0;
    return decided.map(({ firing, mode, submission }, i) => {
      let stored = replies[adds + i]![1];
      if (stored === null) stored = again[next++]![1];
      const outcome: FiringOutcome = typeof stored === 'string' && storedSubmission(stored) !== submission ? 'duplicate' : FIRING_MODES[mode].firingOutcome;
      this.opts.metrics.firingsTotal.inc({ rule: firing.rule, outcome });
      this.opts.logger.info({ jobId: firing.id, rule: firing.rule, app: firing.app, target: firing.target, outcome }, 'firing stored');
      return outcome;
    });
  }

  /** Each job's stored data read after the pipeline's commands so far, then the pipeline sent. */
  private readBack(pipeline: ReturnType<Awaited<Queue['backend']['client']>['pipeline']>, ids: readonly string[]): Promise<[Error | null, unknown][] | null> {
    // A proxy of the ioredis pipeline: commands BullMQ does not declare pass through to it.
    const reads = pipeline as unknown as { hget(key: string, field: string): unknown; exec(): Promise<[Error | null, unknown][] | null> };
    for (const id of ids) reads.hget(this.queue.toKey(id), 'data');
    return reads.exec();
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
