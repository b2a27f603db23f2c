import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connectRedis } from '../redisClient.js';
import { MalletError } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Without REDIS_URL, `mallet serve` runs its own redis-server from PATH (SPEC §1): unix socket
 * only (no TCP port to collide with or expose), append-only file on so queued actions survive a
 * restart, stopped when mallet exits.
 */
export interface EmbeddedRedis {
  readonly socketPath: string;
  stop(): Promise<void>;
}

export async function startEmbeddedRedis(dir: string, logger: Logger): Promise<EmbeddedRedis> {
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) {
    throw new MalletError(
      'MALLET_REDIS_MISSING',
      'REDIS_URL is not set and no redis-server is on PATH. Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) or set REDIS_URL=redis://host:6379.',
    );
  }
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const socketPath = join(abs, 'redis.sock');
  if (existsSync(socketPath)) rmSync(socketPath);
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socketPath, '--unixsocketperm', '700', '--dir', abs,
      '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let exited = false;
  child.once('exit', () => { exited = true; });
  const probe = connectRedis(socketPath, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
  probe.on('error', () => {});
  try {
    for (let i = 0; i < 100 && !exited; i++) {
      if (existsSync(socketPath)) {
        try { if ((await probe.ping()) === 'PONG') break; } catch { /* not ready yet */ }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    probe.disconnect();
  }
  if (exited) throw new MalletError('MALLET_REDIS_MISSING', `the embedded redis-server exited at start (see ${abs})`);
  logger.info({ socket: socketPath }, 'started embedded redis-server (set REDIS_URL to use your own)');
  return {
    socketPath,
    stop: () => new Promise<void>((done) => {
      if (exited) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
      setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000).unref();
    }),
  };
}
