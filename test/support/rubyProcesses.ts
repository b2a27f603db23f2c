import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './freePort.js';

export { freePort };

/**
 * Spawning the real processes mallet controls (redis-server, puma, sidekiq) for tests. Sidekiq 6
 * without redis-namespace uses fixed key names (`processes`, `queue:default`), so every test file
 * that runs real or simulated un-namespaced Sidekiq gets a private redis-server: nothing it does
 * can meet another file's keys.
 */

export interface Spawned {
  readonly child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Resolves when the output contains `text`; rejects when the process exits first or after timeoutMs. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends SIGKILL unless it has already exited. */
  kill(): void;
}

export function spawnLogged(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Spawned {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      hasExited = true;
      for (const w of waiters) w();
      resolve(code);
    });
    child.once('error', (err) => {
      out += `\n[spawn error] ${err.message}\n`;
      hasExited = true;
      for (const w of waiters) w();
      resolve(null);
    });
  });
  return {
    child,
    output: () => out,
    exited,
    waitForOutput(text, timeoutMs = 30_000) {
      const seen = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`timed out waiting for ${String(text)} from ${cmd}; output:\n${out}`)), timeoutMs);
        const finish = (err?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const check = () => {
          if (seen()) finish();
          else if (hasExited) finish(new Error(`${cmd} exited before printing ${String(text)}; output:\n${out}`));
        };
        waiters.add(check);
        check();
      });
    },
    kill() {
      if (!hasExited) child.kill('SIGKILL');
    },
  };
}

/** A TCP port nobody listens on right now (the caller binds it shortly after). */
export interface PrivateRedis {
  readonly url: string;
  client(): Redis;
  stop(): Promise<void>;
}

/** A redis-server of this test file alone (no persistence), on a free TCP port. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-ruby-redis-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const server = spawnLogged('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    ]);
    try {
      await server.waitForOutput('Ready to accept connections', 10_000);
    } catch (err) {
      server.kill();
      if (attempt < 3) continue;
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const url = `redis://127.0.0.1:${port}`;
    const clients: Redis[] = [];
    return {
      url,
      client() {
        const c = new Redis(url, { maxRetriesPerRequest: null });
        clients.push(c);
        return c;
      },
      async stop() {
        for (const c of clients) c.disconnect();
        server.child.kill('SIGTERM');
        await server.exited;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

const REPO = new URL('../..', import.meta.url).pathname;

/**
 * Real `puma` (Debian's puma 5.6.5 or any on PATH) with the mallet plugin from contrib/puma and
 * the small Rack app of test/e2e/fixtures/puma; WEB_CONCURRENCY > 0 runs it in cluster mode.
 */
export function spawnPuma(env: Record<string, string>): Spawned {
  return spawnLogged(
    'puma',
    ['-I', join(REPO, 'contrib/puma/lib'), '-C', join(REPO, 'test/e2e/fixtures/puma/puma.rb'), join(REPO, 'test/e2e/fixtures/puma/config.ru')],
    { cwd: REPO, env: { ...process.env, RACK_ENV: 'production', ...env } },
  );
}

/**
 * Puma as "the dyno" `dyno` on a free port, its plugin watching the app's Redis at `redisUrl`,
 * added to `running` so that the test's afterEach stops it.
 */
export async function startPuma(running: Spawned[], dyno: string, redisUrl: string, env: Record<string, string> = {}): Promise<{ puma: Spawned; port: number }> {
  const port = await freePort();
  const puma = spawnPuma({ PORT: String(port), DYNO: dyno, MALLET_REDIS_URL: redisUrl, ...env });
  running.push(puma);
  return { puma, port };
}

/**
 * Real `sidekiq` (Debian's ruby-sidekiq 6.4.1 or any on PATH) requiring the jobs of
 * test/e2e/fixtures/sidekiq/jobs.rb. `-t` is Sidekiq's shutdown timeout in seconds.
 */
export function spawnSidekiq(opts: { redisUrl: string; dyno: string; queue: string; timeoutS?: number; concurrency?: number }): Spawned {
  return spawnLogged(
    'sidekiq',
    ['-r', join(REPO, 'test/e2e/fixtures/sidekiq/jobs.rb'), '-q', opts.queue, '-c', String(opts.concurrency ?? 2), '-t', String(opts.timeoutS ?? 25)],
    { cwd: REPO, env: { ...process.env, REDIS_URL: opts.redisUrl, DYNO: opts.dyno, RACK_ENV: 'production', APP_ENV: 'production' } },
  );
}

/** Stops what a test left running: SIGTERM (a graceful stop, as Heroku does), SIGKILL after 10 s. */
export async function stopAll(processes: readonly Spawned[]): Promise<void> {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]);
      p.kill();
    }
  }
}
