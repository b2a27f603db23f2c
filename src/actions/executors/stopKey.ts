import { PermanentStepError, type Executor } from '../Executor.js';
import { hasShape } from '../../rules/shapes.js';
import type { StopKeyActionSpec } from '../../rules/Firing.js';
import { stopKeyValue } from '../../rules/instance.js';

/** Writes the stop key the Puma plugin / Node agent polls (SPEC §5): done once the key is set. */
export const stopKeyExecutor: Executor<StopKeyActionSpec> = {
  type: 'redis-stop-key',
  async run(action, ctx) {
    // The rules engine validated the key; checked again because job data outlives rule versions.
    if (!hasShape('redisKey', action.key)) throw new PermanentStepError('stop key does not have the shape ^[A-Za-z0-9:._-]{1,200}$');
    if (!Number.isInteger(action.ttlMs) || action.ttlMs <= 0) throw new PermanentStepError(`stop key ttl must be a positive number of ms, got ${action.ttlMs}`);
    await ctx.redisFor(action.redisUrlRef).set(action.key, stopKeyValue(action.value, action.instance), 'PX', action.ttlMs);
    return { summary: `SET ${action.key} PX ${action.ttlMs}` };
  },
};
