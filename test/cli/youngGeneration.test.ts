import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { REPO } from '../support/malletProcess.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { eventually } from '../support/eventually.js';

/**
 * The Procfile's `web:` line (what a dyno runs) gives `mallet serve` a young generation of
 * 2 × 32 MiB (V8 reads the semi-space flags only at start), and a second SIGTERM during the
 * graceful stop (Heroku signals every process of the dyno) does not cut it short. Runs the build
 * (dist/), with the web line's node flags taken from the Procfile itself.
 */
const webLine = /^web:\s*node\s+(.*?)\s*bin\/mallet\.js serve\s*$/m.exec(readFileSync(join(REPO, 'Procfile'), 'utf8'));
const procfileFlags = (webLine?.[1] ?? '').split(/\s+/).filter(Boolean);
const redis = testRedis();
const prefix = uniquePrefix('young');
const pids: number[] = [];
afterAll(async () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

function start(flags: string[], extraEnv: Record<string, string> = {}) {
  const rules = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
`).file;
  const child = spawn(process.execPath, [...flags, join(REPO, 'bin/mallet.js'), 'serve'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: 'young-test-password', MALLET_LOG_FORMAT: 'json', REDIS_URL: testRedisUrl(), MALLET_RULES: rules, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pids.push(child.pid!);
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const listening = eventually('mallet is listening', async () => {
    const line = out.split('\n').find((l) => l.startsWith('{') && l.includes('"mallet is listening"'));
    return line ? (JSON.parse(line) as { url: string; pid: number }) : undefined;
  }, 60_000);
  return { child, exited, listening, output: () => out };
}

async function newSpaceMiB(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/.exec(text)?.[1]) / 2 ** 20;
}

describe('mallet serve: young generation', () => {
  it('the Procfile\'s web line sets both semi-space sizes', () => {
    expect(procfileFlags).toContain('--max-semi-space-size=32');
    expect(procfileFlags).toContain('--min-semi-space-size=32');
  });

  it('started as the Procfile says, serves with 2 × 32 MiB of new space; two SIGTERMs (as Heroku may send) still stop it gracefully', { timeout: 120_000 }, async () => {
    const a = start(procfileFlags);
    const { url, pid } = await a.listening;
    expect(pid).toBe(a.child.pid);
    expect(await newSpaceMiB(url)).toBeGreaterThanOrEqual(64);
    a.child.kill('SIGTERM');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.output()).toContain('"msg":"bye"');
    await eventually('the serve gone', async () => (alive(pid) ? undefined : true), 20_000);
  });

  it('started without the Procfile\'s flags, node\'s own settings apply (here NODE_OPTIONS): the flags are not forced', { timeout: 60_000 }, async () => {
    const c = start([], { NODE_OPTIONS: '--max-semi-space-size=4' });
    const { url, pid } = await c.listening;
    expect(pid).toBe(c.child.pid);
    expect(await newSpaceMiB(url)).toBeLessThanOrEqual(8);
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});
