import type { Redis } from 'ioredis';
import { snapshotId, type SuspectStore } from '../../dynos/SuspectStore.js';
import type { SidekiqStopActionSpec } from '../../rules/Firing.js';
import { processTypeOf } from '../../rules/shapes.js';
import { errorMessage } from '../executeStep.js';
import { PermanentStepError, type Executor, type StepContext } from '../Executor.js';
import {
  findSidekiqProcesses,
  readSidekiqProcesses,
  readSidekiqWork,
  readStopRecord,
  recordSignal,
  recordTargets,
  sendSidekiqSignal,
  sidekiqKeys,
  type SidekiqKeys,
  type SidekiqProcess,
  type SidekiqSignal,
} from '../sidekiq/index.js';

/** Sidekiq beats every 5 s (6.x) or 10 s (7+); polling faster only costs Redis round trips. */
const POLL_MS = 1000;
const LOG_EVERY_MS = 10_000;

/**
 * SPEC §5 `sidekiq-stop`: quiet (TSTP) every process whose `info.hostname` is the target, wait
 * until each is quiet with nothing busy (or `quiet_timeout`: stop anyway, Sidekiq pushes the
 * unfinished jobs back), stop (TERM), wait until each has left the process set.
 *
 * Retries resume from the record of whom this step signalled (SidekiqStopRecord), so a crash
 * mid-step neither fails for want of processes it already stopped nor stops their successors.
 * With a SuspectStore it also records the jobs each process was running when sent quiet.
 */
export interface SidekiqStopOptions {
  /** Where the jobs running at quiet are recorded for the leak report (mallet's own Redis). */
  readonly suspects?: SuspectStore;
}

export function createSidekiqStopExecutor(opts: SidekiqStopOptions = {}): Executor<SidekiqStopActionSpec> {
  return {
    type: 'sidekiq-stop',
    async run(action, ctx) {
      const redis = ctx.redisFor(action.redisUrlRef);
      const keys = sidekiqKeys(action.namespace);
      const recordKey = keys.stopRecord(ctx.jobId, ctx.stepIndex);
      const where = describeTarget(action);

      const record = await readStopRecord(redis, recordKey);
      let targets: string[];
      if (record.size > 0) {
        targets = [...record.keys()].sort();
        await ctx.log(`sidekiq-stop ${where}: resuming with the processes of an earlier attempt: ${targets.join(', ')}`);
      } else {
        const found = await findSidekiqProcesses(redis, keys, { hostname: action.hostname, tag: action.tag });
        if (found.length === 0) throw new PermanentStepError(`no Sidekiq process with ${where}`);
        const embedded = found.filter((p) => p.embedded);
        if (embedded.length > 0) {
          throw new PermanentStepError(
            `embedded Sidekiq ignores signals sent through Redis (${embedded.map((p) => p.identity).join(', ')}); ` +
              `stop it from its host process instead`,
          );
        }
        targets = found.map((p) => p.identity);
        await recordTargets(redis, recordKey, targets);
      }

      const warnings: string[] = [];
      const send = async (signal: SidekiqSignal, ids: readonly string[]) => {
        for (const id of ids) await sendSidekiqSignal(redis, keys, id, signal, recordSignal(recordKey, id, signal));
        if (ids.length > 0) await ctx.log(`sidekiq-stop ${where}: ${signal} sent to ${ids.join(', ')}`);
      };

      // Quiet: processes a previous attempt already stopped are not asked to go quiet again.
      const quieting = targets.filter((id) => record.get(id) !== 'TERM');
      const toQuiet = live(await readSidekiqProcesses(redis, keys, quieting));
      if (opts.suspects) await recordSuspects(opts.suspects, redis, keys, toQuiet, ctx);
      await send('TSTP', toQuiet.map((p) => p.identity));
      const quietWaitedS = await waitUntil(ctx, 'quiet', action.quietTimeoutMs, async () => {
        const procs = live(await readSidekiqProcesses(redis, keys, quieting));
        const busy = procs.reduce((sum, p) => sum + p.busy, 0);
        // `busy` is only final once the process reports quiet: before that it may still fetch a job.
        const pending = procs.filter((p) => !p.quiet || p.busy > 0);
        return { done: pending.length === 0, report: { busy, processes: procs.length }, describe: `${busy} busy` };
      });
      if (quietWaitedS === undefined) {
        const procs = live(await readSidekiqProcesses(redis, keys, quieting));
        const busy = procs.reduce((s, p) => s + p.busy, 0);
        // `busy` is as of the last heartbeat (5-10 s old), so a process not yet reporting quiet may
        // well be running a job it has not reported.
        const notQuiet = procs.filter((p) => !p.quiet).length;
        warnings.push(
          `quiet_timeout (${action.quietTimeoutMs / 1000}s) expired on ${where} with ${busy} job(s) busy` +
            (notQuiet > 0 ? ` and ${notQuiet} process(es) not yet reporting quiet` : '') +
            '; stopped anyway: Sidekiq pushes unfinished jobs back to their queues',
        );
        await ctx.log(`sidekiq-stop ${where}: warning: ${warnings[0]}`);
      }

      await send('TERM', live(await readSidekiqProcesses(redis, keys, targets)).map((p) => p.identity));
      let remaining: string[] = [];
      const stopWaitedS = await waitUntil(ctx, 'stop', action.stopTimeoutMs, async () => {
        remaining = live(await readSidekiqProcesses(redis, keys, targets)).map((p) => p.identity);
        return { done: remaining.length === 0, report: { remaining: remaining.length }, describe: `${remaining.length} still running` };
      });
      if (stopWaitedS === undefined) {
        // A failure the queue retries: the retry re-sends TERM (harmless) and waits again.
        throw new Error(
          `${remaining.length} Sidekiq process(es) of ${where} still present after stop_timeout ` +
            `(${action.stopTimeoutMs / 1000}s): ${remaining.join(', ')}`,
        );
      }

      await ctx.log(`sidekiq-stop ${where}: ${targets.length} process(es) gone`);
      return {
        summary: `stopped ${targets.length} Sidekiq process(es) with ${where} (${targets.join(', ')})`,
        ...(warnings.length > 0 ? { warnings } : {}),
      };
    },
  };
}

/** Records nothing: for callers without mallet's Redis at hand (tests, tools). */
export const sidekiqStopExecutor = createSidekiqStopExecutor();

/**
 * The jobs each process runs as it is sent quiet, read right before the signal so a crash
 * between the two leaves a record, not a quiet process without one. Best effort: a failure to
 * read or record is logged and the stop goes on, since remediation matters more than its
 * report. Read the Sidekiq heartbeat's work hash, which is up to one beat (5-10 s) old.
 */
async function recordSuspects(store: SuspectStore, redis: Redis, keys: SidekiqKeys, procs: readonly SidekiqProcess[], ctx: StepContext): Promise<void> {
  for (const p of procs) {
    try {
      const at = ctx.now();
      const work = await readSidekiqWork(redis, keys, p.identity, at);
      const dyno = p.hostname ?? ctx.target;
      const added = await store.record(ctx.app, snapshotId(ctx.jobId, ctx.stepIndex, p.identity), {
        at, processType: processTypeOf(dyno), dyno, rule: ctx.rule, jobs: work.jobs, unread: work.unread,
      });
      if (added) {
        const classes = [...new Set(work.jobs.map((j) => j.class))].sort().slice(0, 10);
        await ctx.log(`sidekiq-stop: ${p.identity} was running ${work.jobs.length} job(s)${classes.length ? ` (${classes.join(', ')})` : ''}` +
          (work.unread > 0 ? `, ${work.unread} work record(s) not read` : '') + '; recorded for the leak report');
      }
    } catch (err) {
      await ctx.log(`sidekiq-stop: could not record the running jobs of ${p.identity} for the leak report: ${errorMessage(err)}`);
    }
  }
}

function describeTarget(action: SidekiqStopActionSpec): string {
  let s = `hostname ${action.hostname}`;
  if (action.tag !== undefined) s += ` tag ${action.tag}`;
  if (action.namespace !== undefined) s += ` in namespace ${action.namespace}`;
  return s;
}

function live(states: Map<string, SidekiqProcess | undefined>): SidekiqProcess[] {
  return [...states.values()].filter((p): p is SidekiqProcess => p !== undefined);
}

interface Check {
  readonly done: boolean;
  readonly report: Record<string, unknown>;
  readonly describe: string;
}

/**
 * Polls `check` until done (returns seconds waited) or the timeout (returns undefined), reporting
 * progress each poll and an audit line now and then. Throws when the worker shuts down, so the
 * job goes back to the queue and a later attempt resumes from the stop record.
 */
async function waitUntil(
  ctx: StepContext,
  phase: 'quiet' | 'stop',
  timeoutMs: number,
  check: () => Promise<Check>,
): Promise<number | undefined> {
  const start = ctx.now();
  let lastLog = start;
  for (;;) {
    ctx.signal.throwIfAborted();
    const { done, report, describe } = await check();
    const now = ctx.now();
    const waitedS = Math.round((now - start) / 1000);
    await ctx.progress({ step: ctx.stepIndex, phase, ...report, waitedS });
    if (done) return waitedS;
    if (now - start >= timeoutMs) return undefined;
    if (now - lastLog >= LOG_EVERY_MS) {
      lastLog = now;
      await ctx.log(`sidekiq-stop: ${phase} phase, ${describe} after ${waitedS}s`);
    }
    await ctx.sleep(POLL_MS);
  }
}
