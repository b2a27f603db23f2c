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
let child: ChildProcess | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const c of closers.splice(0)) await c();
  await h.close();
});

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

    const script = fileURLToPath(new URL('./fixtures/stallWorker.ts', import.meta.url));
    child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, STALL_REDIS_URL: testRedisUrl(), STALL_PREFIX: h.prefix, STALL_QUEUE_PREFIX: h.queuePrefix, STALL_HOOK_URL: hook.url, STALL_COUNTER_KEY: counterKey },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    for (let i = 0; i < 600 && hook.bodies.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(hook.bodies).toHaveLength(1);
    child.kill('SIGKILL');
    await once(child, 'exit');

    let runs = 0;
    const counting: Executor<StopKeyActionSpec> = { type: 'redis-stop-key', run: (a, ctx) => { runs++; return stopKeyExecutor.run(a, ctx); } };
    h.worker({ env: { HOOK_URL: hook.url }, executors: [counting as Executor], lockDuration: 1000, stalledInterval: 500 });
    const { state } = await settled(queue, firing.id, 25_000);
    expect(state).toBe('completed');
    expect(await h.redis.get(counterKey)).toBe('1');
    expect(runs).toBe(0);
    expect(hook.bodies).toHaveLength(2);
    expect(await h.redis.get(h.stopKey('web.1'))).toBe('1');
    const logs = await jobLogs(queue, firing.id);
    expect(logs.filter((l) => l.startsWith('step 1 redis-stop-key: done'))).toHaveLength(1);
    expect(logs).toContain('step 1 redis-stop-key: already done, skipped');
    expect(logs.filter((l) => l.startsWith('step 2 notify: done'))).toHaveLength(1);
  });
});
