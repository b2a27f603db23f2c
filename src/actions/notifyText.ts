import type { ResolvedAction } from '../rules/Firing.js';
import type { ActionJobData } from './ActionJob.js';
import { slackEscape } from '../rules/template.js';
import { processTypeOf } from '../rules/shapes.js';
import { firingMode } from './FiringMode.js';

/** One line per action for the audit log and notify texts; never a secret (refs stay refs). */
export function describeAction(action: ResolvedAction): string {
  switch (action.type) {
    case 'redis-stop-key':
      return `SET ${action.key} PX ${action.ttlMs} on ${action.redisUrlRef === undefined ? "the app's Redis" : 'the Redis of ' + refName(action.redisUrlRef)}`;
    case 'sidekiq-stop':
      return `quiet then stop Sidekiq on ${action.hostname}`;
    case 'heroku-restart':
      return action.scope === 'process-type' ? `restart every ${processTypeOf(action.dyno)} dyno of ${action.app}` : `restart ${action.dyno} of ${action.app}`;
    case 'notify':
      return `notify ${refName(action.urlRef)}`;
    default:
      return `unknown action ${(action as { type?: unknown }).type as string}`;
  }
}

/** A `${NAME}` reference is shown by name; a literal (possibly secret) value is not shown. */
function refName(ref: string): string {
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(ref) ? ref : '(literal)';
}

/** Slack-compatible summary: rule, app, dyno, first trigger line, actions. */
export function firingSummary(job: ActionJobData): string {
  const lines = [`mallet: rule *${job.rule}* fired on *${job.app}* ${slackEscape(job.target)}`];
  if (job.prediction !== undefined) lines.push(`predicted: ${slackEscape(job.prediction)}`);
  if (job.triggerLines[0] !== undefined) lines.push(`> ${slackEscape(job.triggerLines[0].slice(0, 500))}`);
  const actions = job.actions.filter((a) => a.type !== 'notify').map(describeAction);
  if (actions.length > 0) lines.push(`actions: ${actions.join('; ')}`);
  return lines.join('\n');
}

/** The text of a notify step for the job's mode (FIRING_MODES). */
export function notifyTextFor(job: ActionJobData, ruleText: string): string {
  const text = firingMode(job.mode)?.notifyText;
  if (text) return text(job, firingSummary(job));
  return ruleText.trim() === '' ? firingSummary(job) : ruleText;
}

/**
 * The notify text of a job that failed for good: what failed, each action and what became of
 * it, the escalation that ran, and what to do (SPEC §8 `on_failure`).
 */
export function failureText(job: ActionJobData, reason: string, results: readonly string[], escalation: readonly string[]): string {
  const lines = [
    `:rotating_light: mallet could not remediate ${job.app} ${slackEscape(job.target)} (rule *${job.rule}*): ${slackEscape(reason)}`,
    ...results.map((r, i) => `${i + 1}. ${slackEscape(r)}`),
  ];
  if (escalation.length > 0) lines.push(`on_failure: ${escalation.map(slackEscape).join('; ')}`);
  else lines.push('on_failure: none configured');
  lines.push(`What to do: check ${slackEscape(job.target)} by hand (heroku ps, heroku logs); ${whatToDo(reason)}`);
  if (job.triggerLines[0] !== undefined) lines.push(`> ${slackEscape(job.triggerLines[0].slice(0, 500))}`);
  return lines.join('\n');
}

function whatToDo(reason: string): string {
  if (/not consumed/.test(reason)) return 'nobody took the stop key: is the Puma plugin or the agent installed on that dyno, reading the same Redis, with the right DYNO?';
  if (/stalled|died/.test(reason)) return 'the worker processes keep dying while running it (memory? a crash?): look at the worker\'s logs.';
  return 'the job in the dashboard (/admin/queues) has the full log.';
}
