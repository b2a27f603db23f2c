import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliIo } from './CliIo.js';
import { formatRuleError, loadRulesText, type RuleError } from '../rules/load.js';
import { defaultRulesPath } from '../rules/defaultPath.js';

const USAGE = 'usage: mallet check [--allow-unset-env] [RULES]\n';

/**
 * `mallet check [RULES]`: exit 0 when valid (warnings printed, still 0), 1 with every error as
 * `file:line:col: message` on stderr, 2 on a usage error.
 */
export async function runCheck(argv: string[], io: CliIo): Promise<number> {
  let allowUnsetEnv = false;
  const files: string[] = [];
  for (const a of argv) {
    if (a === '--allow-unset-env') allowUnsetEnv = true;
    else if (a.startsWith('-')) { io.stderr.write(`mallet check: unknown option ${JSON.stringify(a)}\n${USAGE}`); return 2; }
    else files.push(a);
  }
  if (files.length > 1) { io.stderr.write(USAGE); return 2; }
  const file = files[0] ?? defaultRulesPath(io.env, io.cwd);
  let text: string;
  try {
    text = await readFile(resolve(io.cwd, file), 'utf8');
  } catch (e) {
    io.stderr.write(`${file}:1:1: cannot read rules file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 1;
  }
  const r = loadRulesText(text, file, io.env, { allowUnsetEnv });
  // Errors and warnings in one file-ordered list, as an editor shows them.
  const all: [RuleError, string][] = [...(r.ok ? [] : r.errors.map((e) => [e, ''] as [RuleError, string])), ...r.warnings.map((w) => [w, 'warning: '] as [RuleError, string])];
  all.sort(([a], [b]) => a.line - b.line || a.col - b.col);
  for (const [e, kind] of all) io.stderr.write(formatRuleError({ ...e, message: kind + e.message }) + '\n');
  const warned = r.warnings.length === 0 ? '' : `, ${plural(r.warnings.length, 'warning')}`;
  if (!r.ok) {
    io.stderr.write(`${file}: ${plural(r.errors.length, 'error')}${warned}\n`);
    return 1;
  }
  io.stdout.write(`${file}: ok (${plural(r.ruleSet.rules.length, 'rule')}${warned})\n`);
  return 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
