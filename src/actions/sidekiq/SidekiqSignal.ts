import type { Redis } from 'ioredis';
import type { SidekiqKeys } from './SidekiqKeys.js';

/**
 * The signals mallet sends. `USR1` is deliberately absent: Sidekiq 6+ does not trap it, the
 * process dies without shutdown and leaves a stale `processes` entry (docs/worker-control.md).
 */
export type SidekiqSignal = 'TSTP' | 'TERM';

/** Sidekiq's own client writes the signal list with a 60 s TTL so an unread signal cannot linger. */
const SIGNAL_TTL_S = 60;

/**
 * Queues a signal the process pops at its next heartbeat, exactly as Sidekiq's API does:
 * `MULTI; LPUSH <id>-signals SIG; EXPIRE <id>-signals 60; EXEC`. `alsoRecord` adds writes to the
 * same transaction, so a record of what was sent cannot disagree with what was sent.
 */
export async function sendSidekiqSignal(
  redis: Redis,
  keys: SidekiqKeys,
  identity: string,
  signal: SidekiqSignal,
  alsoRecord?: (tx: ReturnType<Redis['multi']>) => void,
): Promise<void> {
  if (signal !== 'TSTP' && signal !== 'TERM') throw new Error(`refusing to send signal ${String(signal)}`);
  const tx = redis.multi();
  tx.lpush(keys.signals(identity), signal);
  tx.expire(keys.signals(identity), SIGNAL_TTL_S);
  alsoRecord?.(tx);
  const replies = await tx.exec();
  if (replies === null) throw new Error(`signal ${signal} to ${identity}: transaction aborted`);
  for (const [err] of replies) if (err) throw err;
}
