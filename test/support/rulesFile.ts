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

/**
 * A rule (an item of `rules:`) that stops a dyno whose memory samples are over a share of its
 * quota `count` times within `within`, with its stop key under the test's own `keyPrefix`;
 * `moreActions`: further action items, as YAML lines indented like the stop key's.
 */
export function memoryStopRule(o: { name: string; process: string; over: string; count: number; within: string; keyPrefix: string; moreActions?: string }): string {
  return `  - name: ${o.name}
    match:
      process: "${o.process}"
      fields: { "sample#memory_total": "${o.over} sample#memory_quota" }
    threshold: { count: ${o.count}, within: ${o.within} }
    actions:
      - type: redis-stop-key
        key: "${o.keyPrefix}:puma::stop::{{target}}"
${o.moreActions ?? ''}`;
}
