import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { generateDrainPassword } from '../server/generatedDrainPassword.js';

/**
 * `mallet serve` on every core (WEB_CONCURRENCY). All state is in Redis, so N HTTP processes on
 * one dyno behave as N replicas behind a load balancer: node:cluster hands the HTTP and syslog
 * connections round-robin to the children. The primary only supervises; child 0 also runs the
 * in-process action worker (MALLET_WORKER), the others only ingest, so a dyno of N processes
 * does not compete with itself for jobs N times over. Signals are passed on: SIGTERM stops every
 * child gracefully (each finishes its in-flight requests), SIGHUP reloads the rules in each.
 */
export function processCount(config: Config): { count: number; note?: string } {
  if (config.redisUrl === undefined) {
    // The embedded Redis is one process's helper, on a socket it owns.
    return config.webConcurrency !== undefined && config.webConcurrency > 1
      ? { count: 1, note: `WEB_CONCURRENCY=${config.webConcurrency} needs REDIS_URL (the embedded Redis serves one process): running one process` }
      : { count: 1 };
  }
  // Unset: one process, as before. Heroku sets WEB_CONCURRENCY from the dyno's memory (its
  // Node.js buildpack); elsewhere each process costs its own heap and Redis connections, so how
  // many is the operator's choice (README "Scaling").
  return { count: config.webConcurrency ?? 1 };
}

/** True in a child forked by runServeProcesses: it runs the single-process serve. */
export const isServeChild = (): boolean => cluster.isWorker;

/** Heroku SIGKILLs 30 s after SIGTERM; SPEC §6 promises an exit within 25 s. */
const HARD_EXIT_MS = 24_000;
/** A child that exits this soon after starting failed to start (bad rules, port taken): stop all. */
const STARTUP_FAILURE_MS = 10_000;

export function runServeProcesses(count: number, config: Config, logger: Logger): Promise<number> {
  // Every child must accept the same drain password: one is generated here when none is set.
  let drainPassword = config.drainPassword;
  if (drainPassword === undefined) drainPassword = generateDrainPassword(logger, config.port);
  logger.info({ processes: count, worker: config.inProcessWorker ? 'in process 1' : 'off (MALLET_WORKER=0)' }, `mallet serve: starting ${count} HTTP processes (WEB_CONCURRENCY)`);

  return new Promise<number>((done) => {
    // The children's IPC channels do not hold the primary's event loop open, and the CLI awaits
    // this promise at top level: a pending top-level await alone would let the primary exit.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const resolve = (code: number) => { clearInterval(keepAlive); done(code); };
    let stopping = false;
    let exitCode = 0;
    const started = new Map<Worker, number>();
    const fork = (index: number): void => {
      const child = cluster.fork({
        MALLET_DRAIN_PASSWORD: drainPassword,
        MALLET_WORKER: index === 0 && config.inProcessWorker ? '1' : '0',
        MALLET_PROCESS_INDEX: String(index),
      });
      started.set(child, Date.now());
      child.on('exit', (code, signal) => {
        const at = started.get(child) ?? 0;
        started.delete(child);
        if (stopping) {
          if (code !== 0) exitCode = 1;
          if (started.size === 0) resolve(exitCode);
          return;
        }
        if (Date.now() - at < STARTUP_FAILURE_MS) {
          logger.error({ process: index + 1, code, signal }, 'an HTTP process failed to start: stopping the others');
          exitCode = 1;
          stop('startup failure');
          if (started.size === 0) resolve(1);
          return;
        }
        logger.error({ process: index + 1, code, signal }, 'an HTTP process died: starting a new one');
        fork(index);
      });
    };
    for (let i = 0; i < count; i++) fork(i);

    const stop = (why: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, 'shutting down every HTTP process: no new requests, finishing in-flight work');
      for (const child of started.keys()) child.process.kill('SIGTERM');
      const hard = setTimeout(() => {
        logger.error('an HTTP process took too long to stop: exiting now (running jobs return to the queue)');
        for (const child of started.keys()) child.process.kill('SIGKILL');
        resolve(1);
      }, HARD_EXIT_MS);
      hard.unref();
    };
    // `on`: a second SIGTERM (Heroku signals every process of the dyno) must not end the graceful stop.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => { for (const child of started.keys()) child.process.kill('SIGHUP'); });
  });
}
