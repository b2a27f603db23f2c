import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { watchRules } from '../../src/rules/watch.js';
import type { CompiledRuleSet } from '../../src/rules/load.js';

const rule = (name: string) => `version: 1\nrules:\n  - name: ${name}\n    match: { message: '^Error R14 ' }\n    actions: [ { type: redis-stop-key } ]\n`;

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-rules-'));
  dirs.push(dir);
  const path = join(dir, 'rules.yml');
  writeFileSync(path, rule('first'));
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { logs.push(String(c)); cb(); } }));
  const loaded: CompiledRuleSet[] = [];
  const w = watchRules({ path, env: {}, logger, onReload: (rs) => loaded.push(rs), debounceMs: 20 });
  return { dir, path, logs, loaded, w };
}

describe('watchRules', () => {
  it('reloads a valid file and refuses an invalid one, keeping the last good rules', async () => {
    const { path, logs, loaded, w } = setup();
    try {
      expect(await w.reload()).toBe(true);
      expect(loaded.at(-1)!.rules[0]!.name).toBe('first');
      writeFileSync(path, rule('Bad Name'));
      expect(await w.reload()).toBe(false);
      expect(loaded.at(-1)!.rules[0]!.name).toBe('first');
      expect(logs.join('')).toContain('rules.yml:3:11: rule Bad Name: rule name must match');
    } finally { w.close(); }
  });

  it('notices a file replaced by rename (how editors save)', async () => {
    const { dir, path, loaded, w } = setup();
    try {
      const tmp = join(dir, '.rules.yml.swp');
      writeFileSync(tmp, rule('second'));
      renameSync(tmp, path);
      for (let i = 0; i < 200 && loaded.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(loaded.at(-1)?.rules[0]?.name).toBe('second');
      expect(readFileSync(path, 'utf8')).toContain('second');
    } finally { w.close(); }
  });
});
