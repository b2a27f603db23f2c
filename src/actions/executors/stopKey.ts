import type { Redis } from 'ioredis';
import { PermanentStepError, type Executor, type StepContext, type StepResult } from '../Executor.js';
import { hasShape } from '../../rules/shapes.js';
import type { StopKeyActionSpec } from '../../rules/Firing.js';
import { stopKeyValue } from '../../rules/instance.js';
import { watchStopKeyConsumption } from './stopKeyConsumption.js';
import { WAKE_MESSAGE, wakeChannel } from '../../agent/wakeChannel.js';
import type { StopKeyWrite, StopKeyWritten } from '../scripts/claimStopKey.js';

/**
 * The SET and PUBLISH a stop-key step sends; throws PermanentStepError for an action that must
 * not be written. The rules engine validated the key; checked again because job data outlives
 * rule versions.
 */
export function stopKeyWrite(action: StopKeyActionSpec): StopKeyWrite {
  if (!hasShape('redisKey', action.key)) throw new PermanentStepError('stop key does not have the shape ^[A-Za-z0-9:._-]{1,200}$');
  if (!Number.isInteger(action.ttlMs) || action.ttlMs <= 0) throw new PermanentStepError(`stop key ttl must be a positive number of ms, got ${action.ttlMs}`);
  return { key: action.key, value: stopKeyValue(action.value, action.instance), ttlMs: action.ttlMs, channel: wakeChannel(action.key), message: WAKE_MESSAGE };
}

/** Writes the stop key the Puma plugin / Node agent polls (SPEC §5): done once one of them took it. */
export const stopKeyExecutor: Executor<StopKeyActionSpec> = {
  type: 'redis-stop-key',
  async run(action, ctx) {
    const w = stopKeyWrite(action);
    const redis = ctx.redisFor(action.redisUrlRef);
    // The key is the signal; the PUBLISH behind it, in the same round trip, only wakes a consumer
    // that would otherwise find the key at its next poll. So a failed PUBLISH (an ACL without it,
    // a proxy that refuses pub/sub) is noted and the step goes on.
    const replies = await redis.pipeline().set(w.key, w.value, 'PX', w.ttlMs).publish(w.channel, w.message).exec();
    const [setErr] = replies?.[0] ?? [new Error('SET got no reply')];
    if (setErr) return afterStopKeyWrite(action, ctx, redis, { setError: setErr });
    const [pubErr, listeners] = replies?.[1] ?? [new Error('PUBLISH got no reply')];
    return afterStopKeyWrite(action, ctx, redis, pubErr ? { listeners: 0, publishError: pubErr } : { listeners: Number(listeners) });
  },
};

/**
 * The rest of a stop-key step once its SET and PUBLISH answered, sent by the executor or by the
 * worker's claimStopKey script (which writes a first step's key in the claim's own round trip).
 */
export async function afterStopKeyWrite(action: StopKeyActionSpec, ctx: StepContext, redis: Redis, written: StopKeyWritten): Promise<StepResult> {
  if (written.setError) throw written.setError;
  const channel = wakeChannel(action.key);
  const woke = written.publishError ? `PUBLISH ${channel} failed (${written.publishError.message.slice(0, 200)}): consumers find the key at their next poll` : `PUBLISH ${channel} reached ${written.listeners} subscriber(s)`;
  if (action.watch === false) return { summary: `SET ${action.key} PX ${action.ttlMs} (watch: false, not watched for consumption); ${woke}` };
  // Not done until something took it (SPEC §8): the slot stays held meanwhile, since the dyno
  // that takes it is going down.
  await ctx.log(`SET ${action.key} PX ${action.ttlMs}; ${woke}; watching it until its TTL for the Puma plugin or the agent to take it`);
  const seen = await watchStopKeyConsumption(redis, action.key, action.ttlMs, ctx);
  if (!seen.consumed) {
    // Setting it again would not help: nobody is listening.
    throw new PermanentStepError(
      `not consumed: nobody took ${action.key} within its TTL (${action.ttlMs} ms): is the Puma plugin or the agent running on that dyno, reading this Redis, with the right DYNO?`,
      'not_consumed',
    );
  }
  return { summary: `SET ${action.key} PX ${action.ttlMs}; consumed after ${(seen.afterMs / 1000).toFixed(1)} s` };
}
