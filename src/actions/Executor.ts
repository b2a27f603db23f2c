import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ResolvedAction } from '../rules/Firing.js';

/** What a step executor may use. Built by the worker per step. */
export interface StepContext {
  readonly jobId: string;
  readonly app: string;
  readonly rule: string;
  readonly target: string;
  readonly stepIndex: number;
  /** Appends a line to the job's audit log (BullMQ `job.log`). */
  log(line: string): Promise<void>;
  /** Reports progress on the job (BullMQ `job.updateProgress`), e.g. `{ step, busy, waitedS }`. */
  progress(data: Record<string, unknown>): Promise<void>;
  /** Expands `${VAR}` references from the environment; throws PermanentStepError when unset. */
  resolveRef(ref: string): string;
  /** A connection to the Redis a `redisUrlRef` names (mallet's own Redis when undefined); cached, do not quit it. */
  redisFor(redisUrlRef: string | undefined): Redis;
  /** Aborted when the worker is shutting down: long waits stop and the job returns to the queue. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /**
   * For an executor that is not repeatable: call right before the request leaves. Records that it
   * was sent, so a run that follows a crash does not send it again, and makes sure this run still
   * owns the job. Throws (and the request must not be sent) when another run owns the job or has
   * already sent this step.
   */
  markSent(): Promise<void>;
  /** The request had no effect after all (connection refused, 429, an error answer): a retry may send it. */
  unmarkSent(): Promise<void>;
  /**
   * Injected clock (ms since epoch) and sleep, so waits can be stepped in tests. The sleep rejects
   * with `signal.reason` as soon as `signal` aborts.
   */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface StepResult {
  /** One line for the audit trail, e.g. `SET puma::stop::web.1 EX 60`. */
  readonly summary: string;
  readonly warnings?: readonly string[];
}

/** A failure that retrying cannot fix (404 dyno, no such Sidekiq process, bad token). */
export class PermanentStepError extends Error {
  override readonly name = 'PermanentStepError';
  /** @param outcome `mallet_actions_total{outcome}` of the step (e.g. `not_consumed`); default `failed`. */
  constructor(message: string, readonly outcome = 'failed') {
    super(message);
  }
}

/** This run of the job lost its lock: another run has the job, so this one must stop acting. */
export class JobLockLostError extends Error {
  override readonly name = 'JobLockLostError';
}

/** Another run already sent this step and did not record its outcome: it must not be sent again. */
export class AlreadySentError extends Error {
  override readonly name = 'AlreadySentError';
  constructor(readonly sentAt: number) {
    super(`already sent at ${new Date(sentAt).toISOString()} by an earlier run`);
  }
}

export interface Executor<A extends ResolvedAction = ResolvedAction> {
  readonly type: A['type'];
  /**
   * False for an action that must not be sent again when its outcome is unknown (a worker died
   * after sending it, before its answer was recorded). Default true: re-setting a stop key or
   * re-sending a Sidekiq signal is harmless. Such an executor calls `ctx.markSent()` right
   * before its request leaves and `ctx.unmarkSent()` when it knows the request had no effect.
   */
  readonly repeatable?: boolean;
  run(action: A, ctx: StepContext): Promise<StepResult>;
}
