import type { DrainEvent } from '../ingest/DrainEvent.js';
import { redisKeys } from '../keys.js';
import type { ResolvedAction } from './Firing.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { evaluateEvents, type Evaluation, type EvaluationDeps } from './evaluate.js';
import { MemoryThresholdStore } from './thresholdMemory.js';
import { MemoryPredictStore } from './predictMemory.js';
import { formatDuration } from './formatDuration.js';
import { MemoryLifeStore } from '../dynos/lifeMemory.js';
import { lifeBatchOfEvents } from '../dynos/DynoObserver.js';

/**
 * The engine without Redis, for `mallet test` and `mallet replay`: same matching, same templates,
 * same threshold semantics (the in-memory mirror of the Lua script), time = the line's own clock.
 */
export class DryEvaluator {
  readonly #store = new MemoryThresholdStore();
  readonly predictor = new MemoryPredictStore();
  readonly #keys = redisKeys('dry');
  /** The service's dyno observer writes this after each delivery; here, after each batch. */
  readonly #life = new MemoryLifeStore();
  constructor(readonly ruleSet: CompiledRuleSet, private readonly onCounting?: EvaluationDeps['onCounting'], private readonly onPredicting?: EvaluationDeps['onPredicting']) {}

  async evaluate(events: readonly DrainEvent[]): Promise<Evaluation> {
    const evaluation = await evaluateEvents(events, {
      ruleSet: this.ruleSet, store: this.#store, predictor: this.predictor, keys: this.#keys, clock: (e) => e.receivedAt, life: this.#life,
      ...(this.onCounting ? { onCounting: this.onCounting } : {}),
      ...(this.onPredicting ? { onPredicting: this.onPredicting } : {}),
    });
    for (const [app, batch] of lifeBatchOfEvents(events)) this.#life.writeNow(app, batch);
    return evaluation;
  }
}

/** An action as operators write it: durations as `60s`, refs as written. */
export function describeAction(a: ResolvedAction): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (k.endsWith('Ms') && typeof v === 'number') out[k.slice(0, -2).replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = formatDuration(v);
    else if (k === 'urlRef' || k === 'redisUrlRef' || k === 'tokenRef') out[k.replace('Ref', '').replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = String(v);
    else out[k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = String(v);
  }
  return out;
}
