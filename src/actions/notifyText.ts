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
