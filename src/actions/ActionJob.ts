import type { Firing } from '../rules/Firing.js';
import type { ActionMode } from './FiringMode.js';

export type { ActionMode } from './FiringMode.js';

/**
 * BullMQ job data (`mallet-actions`). It is shown in clear on the dashboard, so it holds only
 * what the Firing holds: secrets stay `${VAR}` references until a step runs.
 */
export interface ActionJobData extends Firing {
  /** The row of FIRING_MODES this job runs under. */
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
