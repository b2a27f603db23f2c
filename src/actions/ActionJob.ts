import type { Firing } from '../rules/Firing.js';

/**
 * What the action layer decided for a firing before it was queued:
 * - `execute`: run the actions in order;
 * - `dry_run`: record what each step would do, execute nothing (rule `dry_run` or MALLET_DRY_RUN);
 * - `held`: the app's storm guard tripped (`limits.per_app`): only the rule's notify actions run,
 *   saying the other actions were held;
 * - `flapping`: the same rule+app+target keeps firing (`limits.flapping`): the target is left
 *   alone and the notify actions say so;
 * - `silenced`: a silence covers the firing (src/console/Silence.ts): nothing runs, not even notify.
 */
export type ActionMode = 'execute' | 'dry_run' | 'held' | 'flapping' | 'silenced';

/**
 * BullMQ job data (`mallet-actions`). It is shown in clear on the dashboard, so it holds only
 * what the Firing holds: secrets stay `${VAR}` references until a step runs.
 */
export interface ActionJobData extends Firing {
  readonly mode: ActionMode;
  /** Why the mode is not `execute`, in words for the audit trail and the notify text. */
  readonly modeReason?: string;
  /** When the action layer accepted the firing (ms since epoch). */
  readonly submittedAt: number;
  /** Random per submit() call: tells the job this call stored from one another call stored first. */
  readonly submission: string;
}

/** Job name on the queue: the rule, so the dashboard lists jobs by what fired. */
export function actionJobName(data: Pick<Firing, 'rule'>): string {
  return data.rule;
}
