/**
 * `${NAME}` references in the rules file. Secret-bearing values (URLs, Redis URLs, tokens) stay
 * references all the way into job data; the worker expands them when a step runs.
 */
const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The names referenced in a string, in order. */
export function envRefs(text: string): string[] {
  return [...text.matchAll(REF)].map((m) => m[1]!);
}

/** The referenced variables that are unset or empty (an empty value counts as unset everywhere). */
export function unsetRefs(refs: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  return refs.filter((n) => env[n] === undefined || env[n] === '');
}

/** Expands every `${NAME}`; throws naming the first unset variable (never its neighbours' values). */
export function expandEnv(ref: string, env: Readonly<Record<string, string | undefined>>): string {
  return ref.replace(REF, (_all, name: string) => {
    if (unsetRefs([name], env).length > 0) throw new Error(`environment variable ${name} is not set`);
    return env[name]!;
  });
}
