import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Pipeline } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import type { CompiledRuleSet } from '../../src/rules/CompiledRule.js';
import { redisKeys, type RedisKeys } from '../../src/keys.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import type { FiringSink } from '../../src/rules/Firing.js';
import type { Observer } from '../../src/observe/Observer.js';

/** Rules YAML compiled; a mistake in a test's rules fails the file at load, with the errors. */
export function compiledRules(yaml: string): CompiledRuleSet {
  const loaded = loadRulesText(yaml, 'rules.yml', {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.ruleSet;
}

/** One rule, `r14`: web.* R14 lines, `count` of them within 5m fire a stop key. */
export function webR14Rules(count: number): CompiledRuleSet {
  return compiledRules(`version: 1
rules:
  - name: r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: ${count}, within: 5m }
    actions:
      - { type: redis-stop-key }
`);
}

/** `twice` (web.1, 2 R14 within 5m) and `once` (web.2, one R14): the drain tests' two thresholds. */
export const TWICE_AND_ONCE = `version: 1
rules:
  - name: twice
    match: { process: "web.1", message: '^Error R14 ' }
    threshold: { count: 2, within: 5m }
    actions: [ { type: redis-stop-key } ]
  - name: once
    match: { process: "web.2", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`;

/**
 * The drain's pipeline with the real rules engine on `redis` (silent, metrics of its own), as the
 * service builds it; `observers` get the keys, so they can write where the pipeline reads.
 */
export function realPipeline(opts: { redis: Redis; prefix: string; ruleSet: CompiledRuleSet; sink: FiringSink; observers?: (keys: RedisKeys) => Observer[] }): { pipeline: Pipeline; metrics: Metrics; keys: RedisKeys } {
  const { redis, sink, ruleSet } = opts;
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const keys = redisKeys(opts.prefix);
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet });
  const observers = opts.observers?.(keys);
  const pipeline = new Pipeline({ redis, keys, engine, sink, ...(observers ? { observers } : {}), metrics, logger });
  return { pipeline, metrics, keys };
}
