import { redisKeys } from '../keys.js';
import type { Firing, ResolvedAction } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { decideMode, type ModeDecision } from './decideMode.js';
import { MemoryAdmission } from './admitFiringMemory.js';

export interface ReplayDecision extends ModeDecision {
  /**
   * Rolling remediation (`limits.per_process_type`): when the job would have to wait for a slot,
   * the latest time it starts, assuming each job ahead of it runs as long as its steps may take.
   */
  readonly waitsUntil?: number;
  readonly waitsBehind?: number;
}

/**
 * The action layer's limits for `mallet replay`, in memory and in the log's own time: the same
 * mode decision as the queue (decideMode, with admitFiring's in-memory mirror), and the rolling
 * slots simulated from how long each step may run. The service's slot is held for as long as a
 * job really runs, which replay cannot know: it uses each step's upper bound (a stop key's TTL,
 * Sidekiq's quiet + stop timeouts), so a reported wait is the longest it could be.
 */
export class ReplayLimits {
  readonly #admission = new MemoryAdmission();
  readonly #keys = redisKeys('replay');
  /** app + process type → end times of the jobs holding a slot. */
  readonly #slots = new Map<string, number[]>();

  constructor(private readonly limits: Limits, private readonly globalDryRun: boolean) {}

  async decide(firing: Firing): Promise<ReplayDecision> {
    const now = firing.firedAt;
    const decision = await decideMode(firing, now, {
      limits: this.limits, keys: this.#keys, globalDryRun: this.globalDryRun,
      admit: (keys, id, at, limits, _record, preset) => this.#admission.admit(keys, id, at, limits, preset),
    });
    // Held and flapping jobs only notify and dry runs execute nothing: neither takes a slot.
    if (decision.mode !== 'execute') return decision;
    const slotKey = `${firing.app}\u0000${firing.processType}`;
    const busy = (this.#slots.get(slotKey) ?? []).filter((end) => end > now).sort((a, b) => a - b);
    const runMs = maxRunMs(firing.actions);
    let start = now;
    let behind = 0;
    if (busy.length >= this.limits.perProcessType.concurrency) {
      behind = busy.length - this.limits.perProcessType.concurrency + 1;
      start = busy[behind - 1]!;
      busy.splice(0, behind);
    }
    busy.push(start + runMs);
    this.#slots.set(slotKey, busy);
    return start > now ? { ...decision, waitsUntil: start, waitsBehind: behind } : decision;
  }
}

/** The longest a job's steps may hold its slot. */
function maxRunMs(actions: readonly ResolvedAction[]): number {
  let ms = 0;
  for (const a of actions) {
    if (a.type === 'redis-stop-key') ms += a.ttlMs;
    else if (a.type === 'sidekiq-stop') ms += a.quietTimeoutMs + a.stopTimeoutMs;
  }
  return ms;
}
