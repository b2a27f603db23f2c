import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { StepContext } from '../../src/actions/Executor.js';

/**
 * A StepContext for driving an executor directly against real Redis. `sleep` either waits for
 * real (`clock: 'real'`, for real Sidekiq processes) or steps a simulated clock and runs
 * `onTick` for every simulated `tickMs` elapsed (`clock: 'simulated'`), so protocol tests do not
 * sleep at all.
 */
export interface RecordingStepContext extends StepContext {
  readonly logs: string[];
  readonly progressReports: Record<string, unknown>[];
}

export interface StepContextOptions {
  readonly redis: Redis;
  readonly jobId?: string;
  readonly stepIndex?: number;
  readonly signal?: AbortSignal;
  readonly clock?: 'real' | 'simulated';
  readonly tickMs?: number;
  readonly onTick?: () => Promise<void>;
}

export function recordingStepContext(opts: StepContextOptions): RecordingStepContext {
  const logs: string[] = [];
  const progressReports: Record<string, unknown>[] = [];
  const simulated = (opts.clock ?? 'simulated') === 'simulated';
  const tickMs = opts.tickMs ?? 5000;
  let now = 1_700_000_000_000;
  let sinceTick = 0;
  const signal = opts.signal ?? new AbortController().signal;
  return {
    jobId: opts.jobId ?? 'job-1',
    app: 'my-app',
    rule: 'sidekiq-memory',
    target: 'worker.1',
    stepIndex: opts.stepIndex ?? 0,
    logs,
    progressReports,
    async log(line) {
      logs.push(line);
    },
    async progress(data) {
      progressReports.push(data);
    },
    resolveRef: (ref) => ref,
    redisFor: () => opts.redis,
    // sidekiq-stop is repeatable: it never marks a step as sent.
    markSent: async () => {},
    unmarkSent: async () => {},
    signal,
    logger: pino({ level: 'silent' }),
    now: () => (simulated ? now : Date.now()),
    // Rejects with the signal's reason once it aborts, as the worker's sleep does.
    async sleep(ms) {
      signal.throwIfAborted();
      if (!simulated) {
        await delay(ms, undefined, { signal }).catch(() => signal.throwIfAborted());
        return;
      }
      now += ms;
      sinceTick += ms;
      while (sinceTick >= tickMs) {
        sinceTick -= tickMs;
        await opts.onTick?.();
        signal.throwIfAborted();
      }
    },
  };
}
