import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { REPO } from '../support/malletProcess.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { eventually } from '../support/eventually.js';

/**
 * `node bin/mallet.js serve` (what `npx mallet serve` runs) gets a young generation of 2 × 32 MiB:
 * V8 reads the semi-space flags only at start, so without them bin/mallet.js starts the serve
 * again with them; flags the operator set (NODE_OPTIONS) are kept. Runs the build (dist/).
 */
const redis = testRedis();
const prefix = uniquePrefix('young');
const pids: number[] = [];
afterAll(async () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

function start(extraEnv: Record<string, string> = {}) {
  const rules = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
`).file;
  const child = spawn(process.execPath, [join(REPO, 'bin/mallet.js'), 'serve'], {
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
  it('started without the flags, serves from a child with 2 × 32 MiB of new space; a SIGTERM to both (as Heroku sends) stops it gracefully; the child stops when its starter is killed', { timeout: 120_000 }, async () => {
    const a = start();
    const { url, pid } = await a.listening;
    pids.push(pid);
    expect(pid).not.toBe(a.child.pid);
    expect(await newSpaceMiB(url)).toBeGreaterThanOrEqual(64);
    // Heroku signals every process of the dyno; bin/mallet.js passes its own on as well.
    process.kill(pid, 'SIGTERM');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.output()).toContain('"msg":"bye"');
    await eventually('the serve gone', async () => (alive(pid) ? undefined : true), 20_000);

    const b = start();
    const second = await b.listening;
    pids.push(second.pid);
    b.child.kill('SIGKILL');
    await eventually('the serve stopped with its starter', async () => (alive(second.pid) ? undefined : true), 30_000);
  });

  it('keeps the operator\'s NODE_OPTIONS semi-space size: no second process, V8 as told', { timeout: 60_000 }, async () => {
    const c = start({ NODE_OPTIONS: '--max-semi-space-size=4' });
    const { url, pid } = await c.listening;
    expect(pid).toBe(c.child.pid);
    expect(await newSpaceMiB(url)).toBeLessThanOrEqual(8);
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});
