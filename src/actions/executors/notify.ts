import type { NotifyActionSpec } from '../../rules/Firing.js';
import { PermanentStepError, type Executor, type StepContext } from '../Executor.js';
import type { ActionJobData } from '../ActionJob.js';
import { networkCause } from './herokuRestart.js';
import { MALLET_USER_AGENT } from './userAgent.js';

const TIMEOUT_MS = 10_000;

/** The worker's step context carries the job, so a notify can describe the whole firing. */
export interface NotifyStepContext extends StepContext {
  readonly job?: ActionJobData;
}

/**
 * POSTs a Slack-compatible JSON message (SPEC §5): done on 2xx, retried on 5xx and network
 * errors, failed on other 4xx. The URL is a secret (Slack webhooks carry their token in the
 * path): it is never logged, nor put in an error message.
 */
export const notifyExecutor: Executor<NotifyActionSpec> = {
  type: 'notify',
  async run(action, ctx: NotifyStepContext) {
    const url = ctx.resolveRef(action.urlRef);
    if (!/^https?:\/\//i.test(url)) throw new PermanentStepError('notify url must be an http(s) URL');
    const job = ctx.job;
    const body = {
      text: action.text,
      rule: ctx.rule,
      app: ctx.app,
      target: ctx.target,
      jobId: ctx.jobId,
      ...(job ? { mode: job.mode, firedAt: new Date(job.firedAt).toISOString(), trigger: job.triggerLines[0] ?? null, actions: job.actions.map((a) => a.type) } : {}),
    };
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'User-Agent': MALLET_USER_AGENT },
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new Error(`notify: POST failed (${networkCause(err)})`);
    }
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { summary: `notify POST → ${res.status}` };
    if (res.status >= 500 || res.status === 429) throw new Error(`notify: POST → ${res.status}`);
    throw new PermanentStepError(`notify: POST → ${res.status}`);
  },
};
