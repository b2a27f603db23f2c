import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentStepError } from '../../src/actions/Executor.js';
import { sidekiqStopExecutor } from '../../src/actions/executors/sidekiqStop.js';
import { recordSignal, recordTargets, sendSidekiqSignal, sidekiqKeys, type SidekiqKeys } from '../../src/actions/sidekiq/index.js';
import type { SidekiqStopActionSpec } from '../../src/rules/Firing.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { startPrivateRedis, type PrivateRedis } from '../support/rubyProcesses.js';
import { SimulatedSidekiq, type SimulatedSidekiqOptions } from '../support/rubySidekiqSimulator.js';
import { recordingStepContext } from '../support/rubyStepContext.js';

let redis: Redis;
const namespaces: string[] = [];

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, ...namespaces);
  redis.disconnect();
});

/** A namespaced Sidekiq world on the shared Redis, stepped by the executor's simulated sleeps. */
function world(client = redis, namespace: string | null = uniquePrefix('sq')) {
  if (namespace) namespaces.push(namespace);
  const keys: SidekiqKeys = sidekiqKeys(namespace ?? undefined);
  const sims: SimulatedSidekiq[] = [];
  const add = async (opts: SimulatedSidekiqOptions) => {
    const sim = new SimulatedSidekiq(client, keys, opts);
    await sim.beat();
    sims.push(sim);
    return sim;
  };
  const onTick = async () => {
    for (const s of sims) await s.beat();
  };
  const action = (over: Partial<SidekiqStopActionSpec> = {}): SidekiqStopActionSpec => ({
    type: 'sidekiq-stop',
    hostname: 'worker.1',
    ...(namespace ? { namespace } : {}),
    quietTimeoutMs: 300_000,
    stopTimeoutMs: 60_000,
    ...over,
  });
  return { keys, add, onTick, action };
}

describe('sidekiqStopExecutor', () => {
  it('quiets every process of the hostname, waits for busy 0, stops them and waits until they are gone', async () => {
    const w = world();
    const a = await w.add({ hostname: 'worker.1', busyBeats: 4 });
    const b = await w.add({ hostname: 'worker.1' });
    const other = await w.add({ hostname: 'worker.2', busyBeats: 100 });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });

    const result = await sidekiqStopExecutor.run(w.action(), ctx);

    expect(result.warnings ?? []).toEqual([]);
    expect(result.summary).toContain('stopped 2 Sidekiq process(es)');
    expect(a.received).toEqual(['TSTP', 'TERM']);
    expect(b.received).toEqual(['TSTP', 'TERM']);
    expect(a.exited && b.exited).toBe(true);
    expect(other.received).toEqual([]);
    expect(other.exited).toBe(false);
    // TERM only went out once nothing was busy any more.
    const quiet = ctx.progressReports.filter((p) => p.phase === 'quiet');
    expect(quiet.some((p) => (p.busy as number) > 0)).toBe(true);
    expect(quiet.at(-1)).toMatchObject({ busy: 0 });
    expect(ctx.progressReports.at(-1)).toMatchObject({ phase: 'stop', remaining: 0 });
    expect(ctx.logs.some((l) => l.includes('TSTP sent to'))).toBe(true);
  });

  it('a Fir worker dyno: the hostname is the full $DYNO, and its replica-set sibling is left alone', async () => {
    // Sidekiq's hostname is ENV["DYNO"]; on Fir that is the unique pod name (../shared/docs/heroku-fir-telemetry.md §6).
    const w = world();
    const target = await w.add({ hostname: 'worker-23z34x56y-w78k9' });
    const sibling = await w.add({ hostname: 'worker-23z34x56y-q1r2s' });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });
    const result = await sidekiqStopExecutor.run(w.action({ hostname: 'worker-23z34x56y-w78k9' }), ctx);
    expect(result.summary).toContain('stopped 1 Sidekiq process(es)');
    expect(target.received).toEqual(['TSTP', 'TERM']);
    expect(sibling.received).toEqual([]);
  });

  it('stops anyway with a warning when quiet_timeout expires', async () => {
    const w = world();
    const stuck = await w.add({ hostname: 'worker.1', busyBeats: Infinity });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });

    const result = await sidekiqStopExecutor.run(w.action({ quietTimeoutMs: 20_000 }), ctx);

    expect(result.warnings?.[0]).toMatch(/quiet_timeout \(20s\) expired on hostname worker\.1 in namespace \S+ with 1 job\(s\) busy; stopped anyway.*pushes unfinished jobs back/);
    expect(stuck.received).toEqual(['TSTP', 'TERM']);
    expect(stuck.exited).toBe(true);
    const lastQuiet = ctx.progressReports.filter((p) => p.phase === 'quiet').at(-1);
    expect(lastQuiet?.waitedS).toBeGreaterThanOrEqual(20);
  });

  it('fails (retryably) when a process is still present after stop_timeout', async () => {
    const w = world();
    await w.add({ hostname: 'worker.1', ignoreTerm: true });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });
    const err = await sidekiqStopExecutor.run(w.action({ stopTimeoutMs: 15_000 }), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentStepError);
    expect((err as Error).message).toMatch(/still present after stop_timeout \(15s\)/);
  });

  it('fails permanently when no live process has the hostname', async () => {
    const w = world();
    await w.add({ hostname: 'worker.2' });
    await w.add({ hostname: 'worker.11' });
    await redis.sadd(w.keys.processes, 'worker.1:1:deadbeef0000'); // dead member, hash gone
    const ctx = recordingStepContext({ redis, onTick: w.onTick });
    const err = await sidekiqStopExecutor.run(w.action(), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentStepError);
    expect((err as Error).message).toMatch(/no Sidekiq process with hostname worker\.1/);
    expect(await redis.exists(w.keys.signals('worker.1:1:deadbeef0000'))).toBe(0);
  });

  it('fails permanently, signalling nothing, for an embedded Sidekiq', async () => {
    const w = world();
    const plain = await w.add({ hostname: 'worker.1' });
    const embedded = await w.add({ hostname: 'worker.1', embedded: true });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });
    const err = await sidekiqStopExecutor.run(w.action(), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentStepError);
    expect((err as Error).message).toContain('embedded');
    expect((err as Error).message).toContain(embedded.identity);
    expect(await redis.exists(w.keys.signals(plain.identity), w.keys.signals(embedded.identity))).toBe(0);
  });

  it('only touches processes with the tag when a tag is given', async () => {
    const w = world();
    const tagged = await w.add({ hostname: 'worker.1', tag: 'low' });
    const untagged = await w.add({ hostname: 'worker.1', tag: 'high' });
    const ctx = recordingStepContext({ redis, onTick: w.onTick });
    await sidekiqStopExecutor.run(w.action({ tag: 'low' }), ctx);
    expect(tagged.exited).toBe(true);
    expect(untagged.received).toEqual([]);
  });

  it('returns to the queue when the worker shuts down, and a retry resumes without touching successors', async () => {
    const w = world();
    const original = await w.add({ hostname: 'worker.1', busyBeats: 6 });
    const abort = new AbortController();
    let ticks = 0;
    const first = recordingStepContext({
      redis,
      jobId: 'job-resume',
      signal: abort.signal,
      onTick: async () => {
        await w.onTick();
        if (++ticks === 2) abort.abort(new Error('worker shutting down'));
      },
    });
    await expect(sidekiqStopExecutor.run(w.action(), first)).rejects.toThrow('worker shutting down');
    expect(original.received).toEqual(['TSTP']);

    // Meanwhile a process with the same dyno name starts (a deploy, or Heroku restarting the dyno).
    const successor = await w.add({ hostname: 'worker.1' });
    const retry = recordingStepContext({ redis, jobId: 'job-resume', onTick: w.onTick });
    const result = await sidekiqStopExecutor.run(w.action(), retry);
    expect(result.summary).toContain(original.identity);
    expect(original.received).toEqual(['TSTP', 'TSTP', 'TERM']);
    expect(original.exited).toBe(true);
    expect(successor.received).toEqual([]);
    expect(retry.logs[0]).toMatch(/resuming/);

    // A retry after success (the step result was lost in a crash) succeeds: they are gone.
    const again = recordingStepContext({ redis, jobId: 'job-resume', onTick: w.onTick });
    await expect(sidekiqStopExecutor.run(w.action(), again)).resolves.toMatchObject({ summary: expect.stringContaining('stopped 1') });
    expect(successor.received).toEqual([]);
  });

  it('a retry after a crash between two signals also stops the process not yet signalled', async () => {
    const w = world();
    const first = await w.add({ hostname: 'worker.1' });
    const second = await w.add({ hostname: 'worker.1' });
    // The earlier attempt fixed both targets, signalled the first, then died.
    const recordKey = w.keys.stopRecord('job-partial', 0);
    await recordTargets(redis, recordKey, [first.identity, second.identity]);
    await sendSidekiqSignal(redis, w.keys, first.identity, 'TSTP', recordSignal(recordKey, first.identity, 'TSTP'));
    const late = await w.add({ hostname: 'worker.1' }); // started after the first attempt

    const retry = recordingStepContext({ redis, jobId: 'job-partial', onTick: w.onTick });
    await sidekiqStopExecutor.run(w.action(), retry);
    expect(first.exited && second.exited).toBe(true);
    expect(second.received).toEqual(['TSTP', 'TERM']);
    expect(late.received).toEqual([]);
  });

  it('a different job for the same hostname stops the successor', async () => {
    const w = world();
    const first = await w.add({ hostname: 'worker.1' });
    await sidekiqStopExecutor.run(w.action(), recordingStepContext({ redis, jobId: 'job-a', onTick: w.onTick }));
    const successor = await w.add({ hostname: 'worker.1' });
    await sidekiqStopExecutor.run(w.action(), recordingStepContext({ redis, jobId: 'job-b', onTick: w.onTick }));
    expect(first.received).toEqual(['TSTP', 'TERM']);
    expect(successor.received).toEqual(['TSTP', 'TERM']);
  });

  describe('without a namespace (private Redis: Sidekiq’s plain key names)', () => {
    let priv: PrivateRedis;
    beforeAll(async () => {
      priv = await startPrivateRedis();
    });
    afterAll(async () => {
      await priv?.stop();
    });

    it('stops the process through the plain `processes` set', async () => {
      const client = priv.client();
      const w = world(client, null);
      const sim = await w.add({ hostname: 'worker.1', busyBeats: 2 });
      expect(await client.sismember('processes', sim.identity)).toBe(1);
      await sidekiqStopExecutor.run(w.action(), recordingStepContext({ redis: client, onTick: w.onTick }));
      expect(sim.received).toEqual(['TSTP', 'TERM']);
      expect(await client.sismember('processes', sim.identity)).toBe(0);
      expect(await client.exists('mallet:sidekiq-stop:job-1:0')).toBe(1);
    });
  });
});
