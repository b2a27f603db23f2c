import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { runTest } from '../../src/cli/test.js';
import { runReplay } from '../../src/cli/replay.js';
import type { CliIo } from '../../src/cli/CliIo.js';

const ROOT = join(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'mallet-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function io(env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const streams: CliIo = { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env, cwd: ROOT };
  return { io: streams, out: () => out, err: () => err };
}

describe('mallet check', () => {
  it('accepts the example rules with no environment at all', async () => {
    const c = io();
    expect(await runCheck([], c.io)).toBe(0);
    expect(c.out()).toContain('config/rules.example.yml: ok (8 rules, 2 warnings)');
  });

  it('prints file:line:col lines and exits 1 on a bad file', async () => {
    const c = io();
    expect(await runCheck(['test/fixtures/rules/many-mistakes.bad.yml'], c.io)).toBe(1);
    const lines = c.err().trim().split('\n');
    expect(lines.slice(0, 3).map((l) => l.split(': ')[0])).toEqual([
      'test/fixtures/rules/many-mistakes.bad.yml:4:23',
      'test/fixtures/rules/many-mistakes.bad.yml:7:39',
      'test/fixtures/rules/many-mistakes.bad.yml:8:15',
    ]);
    expect(lines.at(-1)).toContain('3 errors');
  });
});

describe('mallet test', () => {
  it('passes the example rule tests', async () => {
    const c = io();
    expect(await runTest(['config/rules.test.yml'], c.io)).toBe(0);
    expect(c.out()).toMatch(/15 passed, 0 failed/);
  });

  it('fails with a readable diff when a firing differs', async () => {
    const file = join(tmp, 'wrong.test.yml');
    writeFileSync(file, `rules: ${join(ROOT, 'config/rules.example.yml')}
tests:
  - name: wrong target
    lines:
      - { after: 0s, line: 'heroku[web.1]: Error R14 (Memory quota exceeded)', repeat: 2, every: 10s }
    expect:
      - { at: 10s, rule: web-memory-quota, target: web.9 }
`);
    const c = io();
    expect(await runTest([file], c.io)).toBe(1);
    expect(c.out()).toContain('FAIL  wrong target');
    expect(c.out()).toContain('- at 10s web-memory-quota web.9');
    expect(c.out()).toContain('+ at 10s web-memory-quota web.1');
    expect(c.out()).toContain('0 passed, 1 failed');
  });
});

describe('mallet replay', () => {
  it.each([
    ['raw logplex bodies', 'test/fixtures/samples/bodies/r14-web.logplex', 'logplex', 4],
    ['one syslog message per line', 'test/fixtures/samples/lines/runtime-errors.txt', 'syslog-lines', 103],
    ['a syslog-drain stream', 'test/fixtures/samples/bodies/syslog-stream.bin', 'logplex', 16],
  ])('reads %s', async (_name, file, format, lines) => {
    const c = io();
    expect(await runReplay([file, '--app', 'acme-shop'], c.io)).toBe(0);
    expect(c.err()).toContain(`${lines} lines (${format})`);
  });

  it('prints each firing of heroku logs output in dry run', async () => {
    const file = join(tmp, 'heroku.log');
    writeFileSync(file, [
      '2024-11-14T10:00:00.000000+00:00 heroku[web.1]: Error R14 (Memory quota exceeded)',
      '2024-11-14T10:00:20.000000+00:00 app[web.1]: Error R14 (Memory quota exceeded)',
      '2024-11-14T10:00:40.000000+00:00 heroku[web.1]: Error R14 (Memory quota exceeded)',
      '',
    ].join('\n'));
    const c = io();
    expect(await runReplay([file, '--app', 'acme-shop', '--rules', 'config/rules.example.yml'], c.io)).toBe(0);
    expect(c.out()).toBe('2024-11-14T10:00:40.000Z web-memory-quota acme-shop web.1: would run: type=redis-stop-key key=puma::stop::web.1 value=web-memory-quota ttl=1m\n');
    expect(c.err()).toContain('3 lines (heroku-logs), 1 firing');
  });

  it('reads raw bodies up to a broken frame and says where it stopped', async () => {
    const c = io();
    expect(await runReplay(['test/fixtures/samples/bodies/malformed/bad-header.logplex', '--app', 'acme-shop'], c.io)).toBe(0);
    expect(c.err()).toContain('broken frame at byte 96: the rest of the file was not read');
    expect(c.err()).toContain('1 lines (logplex)');
  });

  it('exits 1 when the rules are invalid and 2 on bad usage', async () => {
    const c = io();
    expect(await runReplay(['test/fixtures/samples/lines/app.txt', '--rules', 'test/fixtures/rules/bad-name.bad.yml'], c.io)).toBe(1);
    expect(c.err()).toMatch(/bad-name\.bad\.yml:3:11: /);
    expect(await runReplay([], io().io)).toBe(2);
  });
});
