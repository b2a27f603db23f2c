import { readFileSync } from 'node:fs';
import { loadRules } from '../../src/rules/load.js';
import type { CompiledRule } from '../../src/rules/CompiledRule.js';
import { ensureCorpus } from '../corpus.js';

/** `--name N` from the command line, else `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/**
 * What the in-process benches run: the example rules (config/rules.example.yml, read from the
 * working directory, the repository's root) and the benchmark corpus of `lines` lines, cut into
 * its logplex bodies.
 */
export async function exampleRulesAndCorpus(lines: number): Promise<{ rules: readonly CompiledRule[]; data: Buffer; bodies: Buffer[]; totalLines: number }> {
  const loaded = await loadRules('config/rules.example.yml', {});
  if (!loaded.ok) throw new Error('example rules invalid');
  const corpus = await ensureCorpus(lines);
  const data = readFileSync(corpus.file);
  return {
    rules: loaded.ruleSet.rules,
    data,
    bodies: corpus.index.map((b) => data.subarray(b.offset, b.offset + b.length)),
    totalLines: corpus.index.reduce((n, b) => n + b.msgCount, 0),
  };
}
