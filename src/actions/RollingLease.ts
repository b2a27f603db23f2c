import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { acquireRollingSlot, releaseRollingSlot, renewRollingSlot } from './scripts/rollingSlot.js';

/** How long a rolling slot is held without renewal (a dead worker's slot frees after it). */
export const LEASE_MS = 60_000;

/**
 * One of the `limits.per_process_type` slots of an app + process type, held by one job run
 * (SPEC §4 rolling). The lease is renewed every third of LEASE_MS while the run works; when a
 * renewal finds it ran out (mallet's Redis away too long, so another job may hold the slot now),
 * `lost` aborts and the run stops acting.
 */
export class RollingLease {
  private readonly renewal: NodeJS.Timeout;
  private readonly lostController = new AbortController();
  /** Keep the slot this long past the run's end (a retried remediation is half done). */
  private keepMs: number | undefined;
  private abandoned = false;

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly jobId: string,
    private readonly clock: Clock,
    logger: Logger,
  ) {
    this.renewal = setInterval(() => {
      // Only extends a lease still held: one that ran out may already be another job's slot.
      renewRollingSlot(redis, key, jobId, clock() + LEASE_MS)
        .then((held) => {
          if (held || this.lost.aborted) return;
          logger.warn({ jobId }, 'the rolling slot lease ran out (mallet\'s Redis was unreachable too long): stopping this run');
          this.lostController.abort();
        })
        .catch((err: Error) => logger.warn({ jobId, err: err.message }, 'could not renew the rolling slot'));
    }, LEASE_MS / 3);
    this.renewal.unref();
  }

  /** Takes a slot, or undefined when all `concurrency` of them are held by other jobs. */
  static async take(redis: Redis, key: string, jobId: string, concurrency: number, clock: Clock, logger: Logger): Promise<RollingLease | undefined> {
    const now = clock();
    if (!(await acquireRollingSlot(redis, key, jobId, now, now + LEASE_MS, concurrency))) return undefined;
    return new RollingLease(redis, key, jobId, clock, logger);
  }

  /** A slot another script (claimStopKey) took for `jobId` until `clock() + LEASE_MS`. */
  static taken(redis: Redis, key: string, jobId: string, clock: Clock, logger: Logger): RollingLease {
    return new RollingLease(redis, key, jobId, clock, logger);
  }

  /** Aborted when the lease ran out under this run. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** At the end of the run, hold the slot `ms` longer instead of releasing it (the first call wins). */
  keepFor(ms: number): void {
    this.keepMs ??= ms;
  }

  /** The job belongs to another run now (this one lost its lock): the slot is that run's to release. */
  abandon(): void {
    this.abandoned = true;
  }

  /** Stops renewing, then releases the slot or holds it as `keepFor` asked. Never throws. */
  async end(logger: Logger): Promise<void> {
    clearInterval(this.renewal);
    if (this.abandoned) return;
    // A remediation that will be retried keeps its slot through the backoff, so a second dyno
    // of the same type is not taken down while the first is half done.
    const done = this.keepMs === undefined
      ? releaseRollingSlot(this.redis, this.key, this.jobId)
      : renewRollingSlot(this.redis, this.key, this.jobId, this.clock() + this.keepMs + LEASE_MS);
    await done.catch((err: Error) => logger.warn({ jobId: this.jobId, err: err.message }, 'could not release the rolling slot'));
  }
}
