import { afterAll, describe, expect, it } from 'vitest';
import { loadRulesText } from '../../src/rules/load.js';
import { DryEvaluator } from '../../src/rules/dryRun.js';
import { stopKeyExecutor } from '../../src/actions/executors/stopKey.js';
import type { StepContext } from '../../src/actions/Executor.js';
import type { StopKeyActionSpec } from '../../src/rules/Firing.js';
import { watchStopKey } from '../../src/agent/index.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { memoryStopRule } from '../support/rulesFile.js';
import { eventsOf, memoryLine, UUID_A, UUID_B } from './events.js';

/** A preboot overlap (two web.1 at once) cannot stop the wrong one. */
const redis = testRedis();
const prefix = uniquePrefix('inst');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const loaded = loadRulesText(`version: 1
rules:
${memoryStopRule({ name: 'web-memory-high', process: 'web.*', over: '> 90%', count: 3, within: '2m', keyPrefix: prefix })}  - name: r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key, key: "${prefix}:r14::{{target}}" } ]
`, 'rules.yml', {});
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));

const T0 = Date.parse('2024-11-14T09:00:00Z');

describe('instance-exact stops', () => {
  it('a firing completed by a runtime-metrics line names that instance; an R14 in the overlap is the older one\'s', async () => {
    // The old web.1 (A) over 90 %, the fresh web.1 (B) at 120 MB, interleaved.
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) lines.push(memoryLine(T0 + i * 20_000, 'web.1', UUID_A, 480 + i), memoryLine(T0 + i * 20_000 + 5000, 'web.1', UUID_B, 120));
    lines.push(`${new Date(T0 + 70_000).toISOString()} heroku[web.1]: Error R14 (Memory quota exceeded)`);
    const events = eventsOf(lines).map((e) => Object.create(e, { receivedAt: { value: Date.parse(e.timestamp) } }));
    const { firings } = await new DryEvaluator(loaded.ruleSet).evaluate(events);
    const by = Object.fromEntries(firings.map((f) => [f.rule, f.actions[0] as StopKeyActionSpec]));
    expect(by['web-memory-high']!.instance).toBe(UUID_A);
    // Both are running at 70 s: the R14 is attributed to the older (src/dynos/instanceAt.ts says why).
    expect(by.r14!.instance).toBe(UUID_A);
  });

  it('the stop key names the instance, and of two agents of web.1 only that instance takes it', async () => {
    const key = `${prefix}:puma::stop::web.1`;
    const action: StopKeyActionSpec = { type: 'redis-stop-key', key, value: 'web-memory-high', ttlMs: 60_000, instance: UUID_A };
    const ctx = {
      redisFor: () => redis, log: async () => {}, now: () => Date.now(),
      sleep: (ms: number) => new Promise((r) => setTimeout(r, ms)),
    } as unknown as StepContext;
    const stopped: string[] = [];
    const quiet = { info() {}, warn() {} };
    const agents = [UUID_A, UUID_B].map((id) => watchStopKey({
      redisUrl: testRedisUrl(), dyno: 'web.1', prefix: `${prefix}:puma::stop::`, intervalMs: 50, instanceId: id, logger: quiet,
      onStop: (reason) => { stopped.push(`${id}: ${reason}`); },
    }));
    try {
      // The executor returns once the key was taken (it watches for consumption).
      expect((await stopKeyExecutor.run(action, ctx)).summary).toMatch(/consumed after/);
      await new Promise((r) => setTimeout(r, 300));
      expect(stopped).toEqual([`${UUID_A}: web-memory-high instance=${UUID_A}`]);
      expect(await redis.exists(key)).toBe(0);
      // Without an instance in the key (a rule that cannot tell), the first poller takes it as before.
      expect((await stopKeyExecutor.run({ ...action, instance: undefined }, ctx)).summary).toMatch(/consumed after/);
      // The key is gone before the agent's callback runs (a woken agent deletes, then calls onStop).
      for (let i = 0; i < 100 && stopped.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(stopped[1]).toBe(`${UUID_B}: web-memory-high`);
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  });
});
