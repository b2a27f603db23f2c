import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { stopKeyExecutor } from '../../src/actions/executors/stopKey.js';
import type { Executor } from '../../src/actions/Executor.js';
import type { StopKeyActionSpec } from '../../src/rules/Firing.js';
import { testRedisUrl } from '../support/redis.js';
import { createHarness, jobLogs, makeFiring, settled, startWebhook, type Harness } from './harness.js';

let h: Harness;
const children: ChildProcess[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const c of closers.splice(0)) await c();
  await h.close();
});

type Hook = Awaited<ReturnType<typeof startWebhook>>;

/** A worker in its own process (fixtures/stallWorker.ts), counting its stop-key writes in Redis. */
function spawnWorker(hook: Hook, counterKey: string): ChildProcess {
  const script = fileURLToPath(new URL('./fixtures/stallWorker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, STALL_REDIS_URL: testRedisUrl(), STALL_PREFIX: h.prefix, STALL_QUEUE_PREFIX: h.queuePrefix, STALL_HOOK_URL: hook.url, STALL_COUNTER_KEY: counterKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

/** Waits until the hook has `n` bodies (the worker is then stuck in the notify step), then SIGKILLs the worker. */
async function killWhenHookHas(child: ChildProcess, hook: Hook, n: number): Promise<void> {
  for (let i = 0; i < 1200 && hook.bodies.length < n; i++) await new Promise((r) => setTimeout(r, 25));
  expect(hook.bodies).toHaveLength(n);
  child.kill('SIGKILL');
  await once(child, 'exit');
}

function countingStopKey(): { executor: Executor; runs: () => number } {
  let runs = 0;
  const counting: Executor<StopKeyActionSpec> = { type: 'redis-stop-key', run: (a, ctx) => { runs++; return stopKeyExecutor.run(a, ctx); } };
  return { executor: counting as Executor, runs: () => runs };
}

describe('stalled job recovery', () => {
  it('a worker SIGKILLed mid-job: another worker resumes the job, completed steps are not re-run', async () => {
    h = createHarness('stall');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(0); // the first notify never gets an answer: the child is stuck in step 2
    const counterKey = `${h.prefix}:stop-writes`;
    const queue = h.queue();
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    await queue.submit([firing]);

    await killWhenHookHas(spawnWorker(hook, counterKey), hook, 1);

    const counting = countingStopKey();
    h.worker({ env: { HOOK_URL: hook.url }, executors: [counting.executor], lockDuration: 1000, stalledInterval: 500 });
    const { state } = await settled(queue, firing.id, 25_000);
    expect(state).toBe('completed');
    expect(await h.redis.get(counterKey)).toBe('1');
    expect(counting.runs()).toBe(0);
    expect(hook.bodies).toHaveLength(2);
    expect(h.taken.get(h.stopKey('web.1'))).toBe('1');
    const logs = await jobLogs(queue, firing.id);
    expect(logs.filter((l) => l.startsWith('step 1 redis-stop-key: done'))).toHaveLength(1);
    expect(logs).toContain('step 1 redis-stop-key: already done, skipped');
    expect(logs.filter((l) => l.startsWith('step 2 notify: done'))).toHaveLength(1);
  }, 120_000);

  it('a second worker death does not lose the trigger: the job survives two SIGKILLed workers and completes', async () => {
    h = createHarness('stall2');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(0, 0); // both children hang in the notify step
    const counterKey = `${h.prefix}:stop-writes`;
    const queue = h.queue();
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    await queue.submit([firing]);

    await killWhenHookHas(spawnWorker(hook, counterKey), hook, 1);
    // The second child picks the job up once the first one's lock ran out, and dies the same way.
    await killWhenHookHas(spawnWorker(hook, counterKey), hook, 2);

    const counting = countingStopKey();
    h.worker({ env: { HOOK_URL: hook.url }, executors: [counting.executor], lockDuration: 1000, stalledInterval: 500 });
    const { state, job } = await settled(queue, firing.id, 25_000);
    expect(state).toBe('completed');
    expect(job.stalledCounter).toBe(2);
    expect(await h.redis.get(counterKey)).toBe('1');
    expect(counting.runs()).toBe(0);
    expect(hook.bodies).toHaveLength(3);
    expect(hook.bodies[2]).toMatchObject({ text: 'stopped web.1' });
    const logs = await jobLogs(queue, firing.id);
    expect(logs.filter((l) => l.startsWith('resumed: the worker running this job stopped'))).toHaveLength(2);
  }, 120_000);

  it('deaths that spend every attempt fail the job for good, and the failure is notified', async () => {
    h = createHarness('stall3');
    const hook = await startWebhook();
    closers.push(hook.close);
    hook.statuses.push(0, 0);
    const counterKey = `${h.prefix}:stop-writes`;
    const queue = h.queue({ attempts: 2 });
    const firing = makeFiring({ actions: [h.stopAction('web.1'), { type: 'notify', urlRef: '${HOOK_URL}', text: 'stopped web.1' }] });
    await queue.submit([firing]);

    await killWhenHookHas(spawnWorker(hook, counterKey), hook, 1);
    await killWhenHookHas(spawnWorker(hook, counterKey), hook, 2);

    h.worker({ env: { HOOK_URL: hook.url }, lockDuration: 1000, stalledInterval: 500 });
    const { state, job } = await settled(queue, firing.id, 25_000);
    expect(state).toBe('failed');
    expect(job.failedReason).toBe('the workers running this job died 2 time(s) (stalled); no attempts left');
    // The failure notice: what happened, each action and its result, what to do.
    for (let i = 0; i < 200 && hook.bodies.length < 3; i++) await new Promise((r) => setTimeout(r, 25));
    expect(hook.bodies).toHaveLength(3);
    const text = String(hook.bodies[2]!.text);
    expect(text).toContain('mallet could not remediate my-app web.1 (rule *puma-memory*): the workers running this job died 2 time(s)');
    expect(text).toContain(`1. SET ${h.stopKey('web.1')} PX 60000 on the app's Redis: done: SET ${h.stopKey('web.1')} PX 60000`);
    expect(text).toContain('2. notify ${HOOK_URL}: not run');
    expect(text).toContain('What to do:');
    expect(await h.redis.get(counterKey)).toBe('1');
  }, 120_000);
});
