import type { RedisKeys } from '../keys.js';
import type { Firing } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { formatDuration } from '../rules/formatDuration.js';
import type { ActionMode } from './FiringMode.js';
import type { Admission, AdmissionKeys } from './scripts/admitFiring.js';

export interface ModeDecision {
  readonly mode: ActionMode;
  readonly reason?: string;
}

/** The storm guard and flapping count: the Lua script in the service, its mirror in replay. */
export type Admit = (keys: AdmissionKeys, firingId: string, now: number, limits: Limits) => Admission | Promise<Admission>;

/**
 * What a firing's job will do (SPEC §4 `limits`, §5): dry run, execute, or held/flapping (only
 * notify runs). One decision for the action queue and `mallet replay`, so replay reports what
 * the service does.
 */
export async function decideMode(firing: Firing, now: number, opts: { limits: Limits; keys: RedisKeys; globalDryRun: boolean; admit: Admit }): Promise<ModeDecision> {
  if (firing.dryRun || opts.globalDryRun) {
    // Modes decided before admission do not count toward the limits (FIRING_MODES
    // countsTowardLimits): a rule on trial must not hold live ones back.
    return { mode: 'dry_run', reason: firing.dryRun ? 'rule dry_run' : 'MALLET_DRY_RUN' };
  }
  const { limits, keys } = opts;
  const admission = await opts.admit({
    storm: keys.stormGuard(firing.app),
    // Across rules: three rules each firing once on web.1 are as much a flapping web.1 as one rule thrice.
    flapping: keys.flapping(firing.app, firing.target),
    admission: keys.admission(firing.app, firing.id),
  }, firing.id, now, limits);
  if (admission === 'flapping') {
    return { mode: 'flapping', reason: `${firing.target} fired more than ${limits.flapping.maxFirings} times within ${formatDuration(limits.flapping.withinMs)} (limits.flapping)` };
  }
  if (admission === 'held') {
    return { mode: 'held', reason: `${firing.app} had more than ${limits.perApp.maxFirings} firings within ${formatDuration(limits.perApp.withinMs)} (limits.per_app)` };
  }
  return { mode: 'execute' };
}
