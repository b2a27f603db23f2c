import type { ResolvedAction } from '../rules/Firing.js';
import { AlreadySentError, JobLockLostError, PermanentStepError, type Executor, type StepContext, type StepResult } from './Executor.js';
import { RetryLaterError } from './RetryLaterError.js';

/** How one run of an executor ended, in the terms the worker acts on. */
export type StepOutcome =
  | { readonly kind: 'done'; readonly result: StepResult }
  /** An earlier run sent this non-repeatable step and did not record its answer. */
  | { readonly kind: 'already-sent'; readonly sentAt: number }
  /** Retrying cannot help (PermanentStepError). */
  | { readonly kind: 'permanent'; readonly message: string; readonly metricOutcome: string }
  /** Try again later without spending an attempt (RetryLaterError). */
  | { readonly kind: 'postponed'; readonly message: string; readonly delayMs: number }
  /** The worker is shutting down or the run lost its slot: back to the queue. */
  | { readonly kind: 'interrupted' }
  /** An ordinary failure: retried while attempts remain. */
  | { readonly kind: 'failed'; readonly error: unknown; readonly message: string };

/**
 * Runs one step's executor and sorts how it ended. A JobLockLostError is not an outcome of the
 * step but of the run (another run has the job): it is thrown on.
 */
export async function executeStep(executor: Executor, action: ResolvedAction, ctx: StepContext): Promise<StepOutcome> {
  try {
    return { kind: 'done', result: await executor.run(action, ctx) };
  } catch (err) {
    // A step marked sent stays marked unless its executor unmarked it: what it sent may have
    // had its effect, and the next run records "not repeated" instead of sending it again.
    if (err instanceof AlreadySentError) return { kind: 'already-sent', sentAt: err.sentAt };
    if (err instanceof JobLockLostError) throw err;
    const message = errorMessage(err);
    if (err instanceof PermanentStepError) return { kind: 'permanent', message, metricOutcome: err.outcome };
    if (ctx.signal.aborted) return { kind: 'interrupted' };
    if (err instanceof RetryLaterError) return { kind: 'postponed', message, delayMs: err.delayMs };
    return { kind: 'failed', error: err, message };
  }
}

/** An error as one line for the audit log and the job's failed reason: no stack, bounded. */
export function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 1000);
}
