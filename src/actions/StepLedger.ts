import type { Redis } from 'ioredis';
import type { ResolvedAction } from '../rules/Firing.js';
import { AlreadySentError, JobLockLostError } from './Executor.js';
import { claimStep, type ClaimResult } from './scripts/claimStep.js';

/** A step as recorded once it is done: a retry of the job skips it. */
export interface StepRecord {
  readonly type: ResolvedAction['type'];
  readonly summary: string;
  readonly at: number;
  readonly warnings?: readonly string[];
}

const NINETY_DAYS_S = 90 * 24 * 3600;

/**
 * The steps of one job that are done or sent, in one Redis hash shared by every run of the job
 * (SPEC §5: a step that has succeeded is not run again on retry). Field `N` holds the record of
 * step N once done; `N:started` the time a non-repeatable step's request left.
 *
 * Each claim first checks that this run still holds the job's BullMQ lock: after a long Redis
 * outage BullMQ may hand the job to another run while this one still works, and two runs must
 * not both act.
 */
export class StepLedger {
  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly lockKey: string,
    private readonly token: string | undefined,
    private readonly jobId: string,
    private readonly recorded: Record<string, string>,
    /** The lock checked in the same round trip as the read: the first claim() uses it. */
    private openedClaim: ClaimResult | undefined,
  ) {}

  /**
   * Reads the records and checks the job's lock in one round trip (both commands sent together),
   * so the first step's claim costs none before its write (a stop key). A lost lock is reported
   * by that claim, inside the run, as any later one is.
   */
  static async open(redis: Redis, key: string, lockKey: string, token: string | undefined, jobId: string): Promise<StepLedger> {
    const [recorded, claimed] = await Promise.all([redis.hgetall(key), token === undefined ? undefined : claimStep(redis, lockKey, key, token)]);
    return new StepLedger(redis, key, lockKey, token, jobId, recorded, claimed);
  }

  /** A ledger whose records were read, and the lock checked, by another script (claimStopKey). */
  static opened(redis: Redis, key: string, lockKey: string, token: string | undefined, jobId: string, recorded: Record<string, string>, claimed: ClaimResult): StepLedger {
    return new StepLedger(redis, key, lockKey, token, jobId, recorded, claimed);
  }

  /** The record of a step an earlier run finished. */
  done(field: string): StepRecord | undefined {
    const r = this.recorded[field];
    return r === undefined ? undefined : (JSON.parse(r) as StepRecord);
  }

  /** When an earlier run sent a non-repeatable step without recording its answer. */
  sentAt(field: string): number | undefined {
    const r = this.recorded[`${field}:started`];
    return r === undefined ? undefined : Number(r);
  }

  /** Throws JobLockLostError unless this run still holds the job. */
  async claim(): Promise<void> {
    const opened = this.openedClaim;
    this.openedClaim = undefined;
    if (opened === 'owned') return;
    if (opened === 'lock-lost') throw this.lockLost();
    await this.claimField('', '');
  }

  /** Claims the job and records that a non-repeatable step is being sent; AlreadySentError when a run did so before. */
  async markSent(field: string, at: number): Promise<void> {
    await this.claimField(`${field}:started`, String(at));
  }

  async unmarkSent(field: string): Promise<void> {
    await this.redis.hdel(this.key, `${field}:started`);
  }

  /**
   * Whether `value` differs from the last one noted under `name` for this job (then it is noted):
   * for audit lines a job would otherwise repeat on every pass (waiting for a slot, resumed).
   */
  async noteChanged(name: string, value: string): Promise<boolean> {
    const field = `note:${name}`;
    if (this.recorded[field] === value) return false;
    await this.redis.multi().hset(this.key, field, value).expire(this.key, NINETY_DAYS_S).exec();
    this.recorded[field] = value;
    return true;
  }

  async record(field: string, record: StepRecord): Promise<void> {
    await persist(() => this.redis.multi().hset(this.key, field, JSON.stringify(record)).expire(this.key, NINETY_DAYS_S).exec());
  }

  private lockLost(): JobLockLostError {
    return new JobLockLostError(`job ${this.jobId}: this run lost its lock to another run; stopping without acting`);
  }

  private async claimField(field: string, value: string): Promise<void> {
    if (this.token === undefined) return;
    const r = await claimStep(this.redis, this.lockKey, this.key, this.token, field, value, NINETY_DAYS_S);
    if (r === 'lock-lost') throw this.lockLost();
    if (r === 'already-marked') throw new AlreadySentError(Number(await this.redis.hget(this.key, field)));
  }
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
