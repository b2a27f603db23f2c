import type { Redis } from 'ioredis';
import type { SidekiqSignal } from './SidekiqSignal.js';

/**
 * Which identities one sidekiq-stop step has signalled, and with what. A retry (worker crash,
 * stop_timeout failure) resumes from it: it waits on the same identities and never touches a
 * process started after the first attempt — a dyno Heroku restarted after our stop is the
 * remedy working, not a new target.
 */
const RECORD_TTL_S = 24 * 3600;

export type StopRecord = ReadonlyMap<string, SidekiqSignal>;

export async function readStopRecord(redis: Redis, key: string): Promise<StopRecord> {
  const raw = await redis.hgetall(key);
  const record = new Map<string, SidekiqSignal>();
  for (const [identity, signal] of Object.entries(raw)) {
    if (signal === 'TSTP' || signal === 'TERM') record.set(identity, signal);
  }
  return record;
}

/** Adds the record write to a signal's transaction (see sendSidekiqSignal). */
export function recordSignal(key: string, identity: string, signal: SidekiqSignal) {
  return (tx: ReturnType<Redis['multi']>) => {
    tx.hset(key, identity, signal);
    tx.expire(key, RECORD_TTL_S);
  };
}

