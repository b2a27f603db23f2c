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
  /** For the dashboard, which shows data as is: `firedAt` as ISO 8601 text. */
  readonly fired: string;
  /** For the dashboard: the first trigger line, at the top of the data. */
  readonly trigger: string | null;
  /** For the dashboard: what became of each step (`done: …`, `failed: …`), written as the job runs. */
  readonly results?: readonly string[];
}

/** Job name on the queue, `rule app target` (`web-memory-quota my-app web.3`): the dashboard lists jobs by it. */
export function actionJobName(data: Pick<Firing, 'rule' | 'app' | 'target'>): string {
  return `${data.rule} ${data.app} ${data.target}`;
}

/** The dashboard fields of a job's data, from its firing. */
export function dashboardFields(firing: Pick<Firing, 'firedAt' | 'triggerLines'>): Pick<ActionJobData, 'fired' | 'trigger'> {
  return { fired: new Date(firing.firedAt).toISOString(), trigger: firing.triggerLines[0] ?? null };
}
