import type { Redis } from 'ioredis';
import type { SidekiqKeys } from './SidekiqKeys.js';
import { parseSidekiqInfo, toSidekiqProcess, type SidekiqProcess } from './SidekiqProcess.js';

/**
 * Reads Sidekiq's process registry. A member of `processes` whose hash is gone (no `info`) is a
 * dead process Sidekiq has not pruned yet: it is skipped, never signalled and never pruned here
 * (pruning is Sidekiq's job, guarded by its own lock in 6.5.5+).
 */
export interface ProcessFilter {
  readonly hostname: string;
  readonly tag?: string | undefined;
}

export async function findSidekiqProcesses(
  redis: Redis,
  keys: SidekiqKeys,
  filter: ProcessFilter,
): Promise<SidekiqProcess[]> {
  const members = await redis.smembers(keys.processes);
  const states = await readSidekiqProcesses(redis, keys, members);
  const found: SidekiqProcess[] = [];
  for (const p of states.values()) {
    if (p === undefined || p.hostname !== filter.hostname) continue;
    if (filter.tag !== undefined && p.tag !== filter.tag) continue;
    found.push(p);
  }
  return found.sort((a, b) => a.identity.localeCompare(b.identity));
}

/**
 * The current state of each identity, or undefined when it is gone: out of `processes` (it shut
 * down cleanly) or its hash expired (it died without shutdown). `SISMEMBER processes` alone is
 * not enough because a killed process leaves its member behind.
 */
export async function readSidekiqProcesses(
  redis: Redis,
  keys: SidekiqKeys,
  identities: readonly string[],
): Promise<Map<string, SidekiqProcess | undefined>> {
  const result = new Map<string, SidekiqProcess | undefined>();
  if (identities.length === 0) return result;
  const pipeline = redis.pipeline();
  for (const id of identities) {
    pipeline.sismember(keys.processes, id);
    pipeline.hmget(keys.process(id), 'info', 'busy', 'quiet', 'beat');
  }
  const replies = (await pipeline.exec()) ?? [];
  identities.forEach((id, i) => {
    const [memberErr, member] = replies[2 * i] ?? [];
    const [hashErr, fields] = replies[2 * i + 1] ?? [];
    if (memberErr) throw memberErr;
    if (hashErr) throw hashErr;
    const [info, busy, quiet, beat] = (fields as (string | null)[] | undefined) ?? [];
    const parsed = parseSidekiqInfo(info);
    result.set(id, member === 1 && parsed ? toSidekiqProcess(id, parsed, busy, quiet, beat) : undefined);
  });
  return result;
}
