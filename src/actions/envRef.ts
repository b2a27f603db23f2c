import { expandEnv } from '../rules/env.js';
import { PermanentStepError } from './Executor.js';

/**
 * Expands `${NAME}` references when a step runs (secrets never enter job data). An unset
 * variable cannot fix itself by retrying: the step fails permanently, naming the variable.
 */
export function expandRef(ref: string, env: Readonly<Record<string, string | undefined>>): string {
  try {
    return expandEnv(ref, env);
  } catch (err) {
    throw new PermanentStepError((err as Error).message);
  }
}
