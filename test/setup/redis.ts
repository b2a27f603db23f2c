import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';

/**
 * Vitest global setup: use the Redis at MALLET_TEST_REDIS_URL / 127.0.0.1:6379 when one answers,
 * otherwise start a private redis-server on a free port for this run and stop it afterwards.
 * Tests read the URL from process.env.MALLET_TEST_REDIS_URL (see test/support/redis.ts).
 */
function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

let child: ChildProcess | undefined;
let dir: string | undefined;

export async function setup(): Promise<void> {
  const wanted = process.env.MALLET_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const u = new URL(wanted);
  if (await ping(u.hostname, Number(u.port || 6379))) {
    process.env.MALLET_TEST_REDIS_URL = wanted;
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'mallet-test-redis-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  child.once('error', (err) => { throw new Error(`no Redis reachable at ${wanted} and redis-server could not start: ${err.message}`); });
  for (let i = 0; i < 100; i++) {
    if (await ping('127.0.0.1', port)) {
      process.env.MALLET_TEST_REDIS_URL = `redis://127.0.0.1:${port}`;
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no Redis reachable at ${wanted} and a private redis-server did not answer on ${port}`);
}

export async function teardown(): Promise<void> {
  child?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
}
