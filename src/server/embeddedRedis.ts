import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { connectRedis } from '../redisClient.js';
import { MalletError } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Without REDIS_URL, `mallet serve` runs its own redis-server from PATH (SPEC §1): unix socket
 * only (no TCP port to collide with or expose), append-only file on so queued actions survive a
 * restart, stopped when mallet exits.
 *
 * It runs in a process group of its own: Ctrl-C in a terminal signals the whole foreground group,
 * and a redis-server in mallet's group would shut down at once, before mallet had finished its
 * in-flight requests and jobs on it (connection errors, then a wait for the parts that could not
 * close). mallet stops it last. The folder's `owner` file holds the pid of the mallet that started
 * it, so a server left behind by a mallet that was killed (SIGKILL) is found at the next start
 * rather than a second server being started on the same append-only file.
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
  const ownerPath = join(abs, 'owner');
  if (existsSync(socketPath)) await stopLeftBehind(socketPath, ownerPath, logger);
  if (existsSync(socketPath)) rmSync(socketPath);
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socketPath, '--unixsocketperm', '700', '--dir', abs,
      '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let exited = false;
  child.once('exit', () => { exited = true; });
  writeFileSync(ownerPath, `${process.pid}\n`, { mode: 0o600 });
  // An exit that skips the shutdown (an uncaught error) still takes the server down.
  const onExit = () => { if (!exited) child.kill('SIGTERM'); };
  process.once('exit', onExit);
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
      process.off('exit', onExit);
      if (exited) return done();
      child.once('exit', () => { rmSync(ownerPath, { force: true }); done(); });
      child.kill('SIGTERM');
      setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000).unref();
    }),
  };
}

/**
 * A socket that answers belongs to a redis-server still running in this folder: another mallet's
 * (refused: two servers on one append-only file corrupt it) or one left by a mallet that did not
 * exit cleanly (shut down, its data saved, and replaced).
 */
async function stopLeftBehind(socketPath: string, ownerPath: string, logger: Logger): Promise<void> {
  if (!(await accepts(socketPath))) return; // a stale socket file: nobody listens on it
  const owner = ownerPid(ownerPath);
  if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
    throw new MalletError('MALLET_REDIS_IN_USE', `another mallet (pid ${owner}) is running in this folder with its embedded redis-server on ${socketPath}: stop it first, or set REDIS_URL to share one Redis between them`);
  }
  logger.warn({ socket: socketPath, owner }, 'an embedded redis-server left by a mallet that did not exit cleanly is still running: shutting it down (its data is kept) and starting a fresh one');
  const left = connectRedis(socketPath, { maxRetriesPerRequest: 0 });
  left.on('error', () => {});
  try {
    await left.call('SHUTDOWN').catch(() => { /* the connection closes as it shuts down */ });
    for (let i = 0; i < 100 && existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 50));
  } finally {
    left.disconnect();
  }
}

function accepts(socketPath: string): Promise<boolean> {
  return new Promise((done) => {
    const s = createConnection(socketPath);
    s.once('connect', () => { s.destroy(); done(true); });
    s.once('error', () => done(false));
  });
}

function ownerPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
