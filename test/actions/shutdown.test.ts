import { afterEach, describe, expect, it } from 'vitest';
import type { Executor } from '../../src/actions/Executor.js';
import type { SidekiqStopActionSpec } from '../../src/rules/Firing.js';
import { createHarness, jobLogs, makeFiring, settled, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

/** Stands in for a long wait (Sidekiq quiet): sleeps through the context, so shutdown can stop it. */
function waitingExecutor(ms: number, started: () => void): Executor {
  const e: Executor<SidekiqStopActionSpec> = {
    type: 'sidekiq-stop',
    async run(action, ctx) {
      started();
      await ctx.sleep(ms);
      return { summary: `waited for ${action.hostname}` };
    },
  };
  return e as Executor;
}

const sidekiq: SidekiqStopActionSpec = { type: 'sidekiq-stop', hostname: 'worker.1', quietTimeoutMs: 1000, stopTimeoutMs: 1000 };

describe('worker close', () => {
  it('lets a running job finish when it ends within the timeout', async () => {
    h = createHarness('close-finish');
    const queue = h.queue();
    let started!: () => void;
    const running = new Promise<void>((r) => { started = r; });
    const w = h.worker({ executors: [waitingExecutor(200, () => started())] });
    const firing = makeFiring({ target: 'worker.1', actions: [sidekiq] });
    await queue.submit([firing]);
    await running;
    await w.close(10_000);
    expect(await (await queue.queue.getJob(firing.id))!.getState()).toBe('completed');
  });

  it('past the timeout the running job goes back to the queue without spending an attempt, and runs later', async () => {
    h = createHarness('close-return');
    const queue = h.queue();
    let started!: () => void;
    const running = new Promise<void>((r) => { started = r; });
    const w = h.worker({ executors: [waitingExecutor(600_000, () => started())] });
    const firing = makeFiring({ target: 'worker.1', actions: [sidekiq] });
    await queue.submit([firing]);
    await running;
    await w.close(100);
    const job = (await queue.queue.getJob(firing.id))!;
    expect(['delayed', 'waiting']).toContain(await job.getState());
    expect(job.attemptsMade).toBe(0);
    expect(await jobLogs(queue, firing.id)).toContain('step 1 sidekiq-stop: interrupted by shutdown, back to the queue');
    h.worker({ executors: [waitingExecutor(1, () => {})] });
    expect((await settled(queue, firing.id)).state).toBe('completed');
  });
});
