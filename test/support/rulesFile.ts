import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes a rules file into a fresh temporary folder; returns its path and the folder. */
export function tempRulesFile(yaml: string): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-rules-'));
  const file = join(dir, 'rules.yml');
  writeFileSync(file, yaml);
  return { file, dir };
}
