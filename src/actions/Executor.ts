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
  /** Injected clock (ms since epoch) and sleep, so waits can be stepped in tests. */
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
}

export interface Executor<A extends ResolvedAction = ResolvedAction> {
  readonly type: A['type'];
  /**
   * False for an action that must not be sent again when its outcome is unknown (a worker died
   * after sending it, before its answer was recorded). Default true: re-setting a stop key or
   * re-sending a Sidekiq signal is harmless.
   */
  readonly repeatable?: boolean;
  run(action: A, ctx: StepContext): Promise<StepResult>;
}
