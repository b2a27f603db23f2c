import type { Redis } from 'ioredis';
import type { SidekiqSignal } from './SidekiqSignal.js';

/**
 * Which identities one sidekiq-stop step has signalled, and with what. A retry (worker crash,
 * stop_timeout failure) resumes from it: it waits on the same identities and never touches a
 * process started after the first attempt — a dyno Heroku restarted after our stop is the
 * remedy working, not a new target.
 */
const RECORD_TTL_S = 24 * 3600;

/** `FOUND`: chosen as a target, not signalled yet (an attempt may die between two signals). */
export type StopRecordState = 'FOUND' | SidekiqSignal;
export type StopRecord = ReadonlyMap<string, StopRecordState>;

export async function readStopRecord(redis: Redis, key: string): Promise<StopRecord> {
  const raw = await redis.hgetall(key);
  const record = new Map<string, StopRecordState>();
  for (const [identity, state] of Object.entries(raw)) {
    if (state === 'FOUND' || state === 'TSTP' || state === 'TERM') record.set(identity, state);
  }
  return record;
}

/** Fixes the targets of the step before any is signalled, so a retry resumes with all of them. */
export async function recordTargets(redis: Redis, key: string, identities: readonly string[]): Promise<void> {
  if (identities.length === 0) return;
  const tx = redis.multi();
  for (const id of identities) tx.hsetnx(key, id, 'FOUND');
  tx.expire(key, RECORD_TTL_S);
  const replies = await tx.exec();
  for (const [err] of replies ?? []) if (err) throw err;
}

/** Adds the record write to a signal's transaction (see sendSidekiqSignal). */
export function recordSignal(key: string, identity: string, signal: SidekiqSignal) {
  return (tx: ReturnType<Redis['multi']>) => {
    tx.hset(key, identity, signal);
    tx.expire(key, RECORD_TTL_S);
  };
}

