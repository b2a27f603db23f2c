import type { FiringOutcome } from '../rules/Firing.js';
import { slackEscape } from '../rules/template.js';

/**
 * What each firing mode means, in one place: the queue decides a mode per firing (queue.ts
 * `decide`), the worker runs the job as its row says (worker.ts), the notify text and the
 * metrics read it from here. A new mode is a new row (and its `FiringOutcome`, which the rules
 * layer declares as the contract of FiringSink).
 */
export interface FiringMode {
  /** Runs the rule's remediation actions (every action but `notify`), and so takes a rolling slot. */
  readonly runsActions: boolean;
  /** Runs the rule's `notify` actions. */
  readonly runsNotify: boolean;
  /**
   * Counted by the storm guard and the flapping limit (scripts/admitFiring.ts). A mode that does
   * not count is decided before admission, so a rule on trial or a silenced app cannot hold
   * live firings back.
   */
  readonly countsTowardLimits: boolean;
  /** `mallet_firings_total{outcome}` of a firing stored in this mode. */
  readonly firingOutcome: FiringOutcome;
  /** `mallet_actions_total{outcome}` of an action this mode does not run. */
  readonly notRunOutcome: string;
  /** The audit line of a step this mode does not run, given what the step would have done. */
  notRunLine(description: string): string;
  /** The first audit line of a job in this mode (why it does not simply execute). */
  headline?(reason: string | undefined): string;
  /** The notify text; without it the rule's own text (or the firing summary) is sent. */
  notifyText?(firing: ModeFiring, summary: string): string;
}

/** What a mode's texts may say about the firing. */
export interface ModeFiring {
  readonly rule: string;
  readonly app: string;
  readonly target: string;
  readonly modeReason?: string;
}

export const FIRING_MODES = {
  /** Run the actions in order. */
  execute: {
    runsActions: true,
    runsNotify: true,
    countsTowardLimits: true,
    firingOutcome: 'enqueued',
    notRunOutcome: 'skipped',
    notRunLine: (d) => `not run: would ${d}`,
  },
  /** Rule `dry_run` or MALLET_DRY_RUN: record what each step would do, execute nothing. */
  dry_run: {
    runsActions: false,
    runsNotify: false,
    countsTowardLimits: false,
    firingOutcome: 'dry_run',
    notRunOutcome: 'dry_run',
    notRunLine: (d) => `dry run, would ${d}`,
  },
  /** The app's storm guard tripped (`limits.per_app`): only notify actions run, saying so. */
  held: {
    runsActions: false,
    runsNotify: true,
    countsTowardLimits: true,
    firingOutcome: 'held',
    notRunOutcome: 'held',
    notRunLine: (d) => `held, did not ${d}`,
    headline: (reason) => `held: ${reason ?? ''}; only notify actions run`,
    notifyText: (f, summary) =>
      `:warning: mallet held the actions of rule ${f.rule} on ${f.app} ${slackEscape(f.target)} (storm guard: ${f.modeReason ?? 'limits.per_app'}); nothing was executed.\n` +
      `What to do: look at the app as a whole (a deploy, a dependency down); the rule acts again once the storm guard's window has passed.\n${summary}`,
  },
  /** The same target keeps firing (`limits.flapping`): it is left alone and notify actions say so. */
  flapping: {
    runsActions: false,
    runsNotify: true,
    countsTowardLimits: true,
    firingOutcome: 'flapping',
    notRunOutcome: 'flapping',
    notRunLine: (d) => `flapping, did not ${d}`,
    headline: (reason) => `flapping: ${reason ?? ''}; only notify actions run`,
    notifyText: (f, summary) =>
      `:warning: mallet left ${f.app} ${slackEscape(f.target)} alone: it is flapping (${f.modeReason ?? 'limits.flapping'}); rule ${f.rule} executed nothing.\n` +
      `What to do: remediation is not fixing ${slackEscape(f.target)}; find the cause (a leak, a bad release) before it fires again.\n${summary}`,
  },
  /** A silence covers the firing (src/console/Silence.ts): recorded, nothing runs, not even notify. */
  silenced: {
    runsActions: false,
    runsNotify: false,
    countsTowardLimits: false,
    firingOutcome: 'silenced',
    notRunOutcome: 'silenced',
    notRunLine: (d) => `silenced, did not ${d}`,
    headline: (reason) => `silenced: ${reason ?? ''}; nothing runs`,
  },
} as const satisfies Record<string, FiringMode>;

/** What the action layer decided for a firing before it was queued: a row of FIRING_MODES. */
export type ActionMode = keyof typeof FIRING_MODES;

/** The row of a job's mode; undefined for a mode this version does not know (job data written by a newer one). */
export function firingMode(mode: string): FiringMode | undefined {
  return Object.hasOwn(FIRING_MODES, mode) ? FIRING_MODES[mode as ActionMode] : undefined;
}
