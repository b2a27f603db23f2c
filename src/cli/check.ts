import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliIo } from './CliIo.js';
import { formatRuleError, loadRulesText } from '../rules/load.js';
import { defaultRulesPath } from '../rules/defaultPath.js';

/** `mallet check [RULES]`: 0 when valid; 1 with `file:line:col: message` lines on stderr. */
export async function runCheck(argv: string[], io: CliIo): Promise<number> {
  if (argv.length > 1 || argv[0]?.startsWith('-')) {
    io.stderr.write('usage: mallet check [RULES]\n');
    return 2;
  }
  const file = argv[0] ?? defaultRulesPath(io.env, io.cwd);
  let text: string;
  try {
    text = await readFile(resolve(io.cwd, file), 'utf8');
  } catch (e) {
    io.stderr.write(`${file}:1:1: cannot read rules file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 1;
  }
  const r = loadRulesText(text, file, io.env);
  if (!r.ok) {
    for (const e of r.errors) io.stderr.write(formatRuleError(e) + '\n');
    io.stderr.write(`${file}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  io.stdout.write(`${file}: ok (${r.ruleSet.rules.length} rule${r.ruleSet.rules.length === 1 ? '' : 's'})\n`);
  return 0;
}
