import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';

/**
 * A redis-server of the test's own that the test stops and starts again (an outage), on the same
 * port with the same data: append-only in `dir`, stopped with SIGTERM so that the file is
 * written, so what mallet stored before the outage (frame marks, firings) is there after it.
 * The port is a random one above 30000, not probed: the outage tests need the same one twice.
 */
export interface RestartableRedis {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it unless it is already stopped (afterAll). */
  stopIfRunning(): Promise<void>;
}

export function restartableRedis(dir: string): RestartableRedis {
  const port = 30000 + Math.floor(Math.random() * 20000);
  let proc: ChildProcess | undefined;
  const stop = async () => {
    const p = proc!;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); });
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir], { stdio: 'ignore' });
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      for (let i = 0; i < 100; i++) {
        try { await probe.connect(); if ((await probe.ping()) === 'PONG') break; } catch { /* not yet */ }
        await new Promise((r) => setTimeout(r, 50));
      }
      probe.disconnect();
    },
    stop,
    async stopIfRunning() {
      if (proc && proc.exitCode === null) await stop();
    },
  };
}
