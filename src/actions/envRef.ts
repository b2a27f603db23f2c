import { PermanentStepError } from './Executor.js';

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Expands `${NAME}` references from the environment when a step runs (secrets never enter job
 * data). An unset variable fails the step permanently, naming the variable, never a value.
 */
export function expandRef(ref: string, env: Readonly<Record<string, string | undefined>>): string {
  return ref.replace(REF, (_, name: string) => {
    const value = env[name];
    if (value === undefined || value === '') throw new PermanentStepError(`environment variable ${name} is not set`);
    return value;
  });
}
