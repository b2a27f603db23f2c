import { it } from 'vitest';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { pino } from 'pino';
import { Pipeline } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { testRedis, uniquePrefix, cleanupPrefix } from '../../test/support/redis.js';
import { drainLine, frame } from '../../test/support/drainClient.js';
it('dbg', async () => {
  const redis = testRedis(); const prefix = uniquePrefix('dbg');
  const loaded = loadRulesText(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key, ttl: 60s } ]
`, 'r.yml', {}); if (!loaded.ok) throw new Error('x');
  const logger = pino({ level: 'silent' }); const metrics = createMetrics(undefined, { defaults: false }); const keys = redisKeys(prefix);
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet });
  const p = new Pipeline({ redis, keys, engine, sink: { submit: async (f) => f.map(() => 'enqueued' as const) }, metrics, logger, observers: [new DynoObserver(new RedisDynoStore(redis, keys))] });
  const body = frame(drainLine('heroku', 'web.1', 'Process running mem=600M(117.2%)'), drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)'));
  try { console.log(await p.ingest({ app: 'a', drainToken: 'd.1', frameId: 'F1', dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages })); } catch (e) { console.log('ERR', e); }
  await cleanupPrefix(redis, prefix); redis.disconnect();
});
