import { createHash } from 'node:crypto';

/**
 * The job id of a firing (SPEC §5): the same (rule, app, target, window) always gives the same id,
 * so replicas and retries cannot enqueue it twice. BullMQ ids must not contain `:` nor be all
 * digits: `f` + sha1 hex satisfies both.
 */
export function firingId(rule: string, app: string, target: string, window: string): string {
  return 'f' + createHash('sha1').update(`${rule}\0${app}\0${target}\0${window}`).digest('hex');
}
