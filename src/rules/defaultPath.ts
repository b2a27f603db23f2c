import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** SPEC §2: MALLET_RULES, else config/rules.yml, else config/rules.example.yml (relative to cwd). */
export function defaultRulesPath(env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  if (env.MALLET_RULES) return env.MALLET_RULES;
  return existsSync(resolve(cwd, 'config/rules.yml')) ? 'config/rules.yml' : 'config/rules.example.yml';
}
