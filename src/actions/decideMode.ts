import type { RedisKeys } from '../keys.js';
import type { Firing } from '../rules/Firing.js';
import type { Limits } from '../rules/RuleSet.js';
import { formatDuration } from '../rules/formatDuration.js';
import type { ActionMode } from './FiringMode.js';
import type { Admission, AdmissionKeys, AdmissionPreset, AdmissionRecord } from './scripts/admitFiring.js';
import type { Silence } from '../console/Silence.js';
import { statsBucket } from '../console/stats.js';
import { HISTORY_BOUNDS } from '../console/historyLua.js';
import { truncateUtf8 } from '../truncateUtf8.js';

export interface ModeDecision {
  readonly mode: ActionMode;
  readonly reason?: string;
}

/** The storm guard and flapping count: the Lua script in the service, its mirror in replay. */
export type Admit = (keys: AdmissionKeys, firingId: string, now: number, limits: Limits, record: AdmissionRecord, preset?: AdmissionPreset) => Admission | Promise<Admission>;

/** What a firing's admission is asked with; `line` its first trigger line as the history keeps it. */
export interface AdmissionRequest {
  readonly keys: AdmissionKeys;
  readonly record: AdmissionRecord;
  readonly preset: AdmissionPreset | undefined;
}

type FiringFacts = Pick<Firing, 'id' | 'rule' | 'app' | 'target' | 'firedAt' | 'dryRun' | 'prediction'> & { readonly line: string };

/**
 * The admission of a firing: its keys, its history record and a mode decided before the limits
 * are asked. One for the action queue's own call, the drain's body script (its firings admitted
 * in the votes' round trip, src/actions/bodyAdmission.ts) and `mallet replay`.
 */
export function admissionRequest(
  firing: FiringFacts,
  opts: { limits: Limits; keys: RedisKeys; globalDryRun: boolean; silence?: Silence | undefined; submission?: string },
): AdmissionRequest {
  // Modes decided before admission do not count toward the limits (FIRING_MODES
  // countsTowardLimits): a rule on trial or a silenced app must not hold live ones back. They
  // are still admitted, so the history records them once per firing.
  const { limits, keys, silence } = opts;
  const preset: AdmissionPreset | undefined = silence
    ? { mode: 'silenced', reason: `silence ${silence.id}: ${silence.comment}` }
    : firing.dryRun || opts.globalDryRun
      ? { mode: 'dry_run', reason: firing.dryRun ? 'rule dry_run' : 'MALLET_DRY_RUN' }
      : undefined;
  const reasons = {
    flapping: `${firing.target} fired more than ${limits.flapping.maxFirings} times within ${formatDuration(limits.flapping.withinMs)} (limits.flapping)`,
    held: `${firing.app} had more than ${limits.perApp.maxFirings} firings within ${formatDuration(limits.perApp.withinMs)} (limits.per_app)`,
  };
  return {
    keys: {
      storm: keys.stormGuard(firing.app),
      // Across rules: three rules each firing once on web.1 are as much a flapping web.1 as one rule thrice.
      flapping: keys.flapping(firing.app, firing.target),
      admission: keys.admission(firing.app, firing.id),
      spell: keys.threshold(firing.rule, firing.app, firing.target).spell,
      history: keys.history(firing.app),
      stats: keys.stats(firing.app, statsBucket(firing.firedAt)),
    },
    record: {
      rule: firing.rule, app: firing.app, target: firing.target, firedAt: firing.firedAt,
      line: firing.line, reasons, submission: opts.submission ?? '',
      ...(firing.prediction !== undefined ? { prediction: truncateUtf8(firing.prediction, HISTORY_BOUNDS.lineBytes) } : {}),
    },
    preset,
  };
}

/** The job's mode and its reason, from the admission's answer. */
export function modeOf(admission: Admission, request: AdmissionRequest): ModeDecision {
  const { preset, record } = request;
  if (admission === 'flapping' || admission === 'held') return { mode: admission, reason: record.reasons[admission] };
  if (admission === 'dry_run' || admission === 'silenced') return { mode: admission, reason: preset?.mode === admission ? preset.reason : admission };
  return { mode: 'execute' };
}

/**
 * What a firing's job will do (SPEC §4 `limits`, §5): dry run, execute, or held/flapping (only
 * notify runs). One decision for the action queue and `mallet replay`, so replay reports what
 * the service does.
 */
export async function decideMode(
  firing: Firing, now: number,
  opts: { limits: Limits; keys: RedisKeys; globalDryRun: boolean; admit: Admit; silence?: Silence | undefined; submission?: string },
): Promise<ModeDecision> {
  const request = admissionRequest({ ...firing, line: truncateUtf8(firing.triggerLines[0] ?? '', HISTORY_BOUNDS.lineBytes) }, opts);
  const admission = await opts.admit(request.keys, firing.id, now, opts.limits, request.record, request.preset);
  return modeOf(admission, request);
}
