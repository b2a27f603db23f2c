import { loadConfig, type Config } from '../config.js';
import { MalletError } from '../errors.js';
import { createLogger, wantsPrettyLogs } from '../logger.js';
import { startService, type Service } from '../server/service.js';
import type { CliIo } from './CliIo.js';
import { isServeChild, processCount, runServeProcesses } from './serveProcesses.js';

/** Heroku SIGKILLs 30 s after SIGTERM; SPEC §6 promises an exit within 25 s. */
const HARD_EXIT_MS = 24_000;

/** `mallet serve` (HTTP + syslog + worker) and `mallet worker` (the action worker alone). */
export async function runServe(mode: 'serve' | 'worker', io: CliIo): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(io.env, io.cwd);
  } catch (err) {
    io.stderr.write(`mallet: ${(err as Error).message}\n`);
    return 1;
  }
  const logger = createLogger(config.logLevel, { pretty: wantsPrettyLogs(config.logFormat, io.stdout as { isTTY?: boolean }) });
  if (mode === 'serve' && !isServeChild()) {
    const { count, note } = processCount(config);
    if (note) logger.warn(note);
    if (count > 1) return runServeProcesses(count, config, logger);
  }
  let service: Service;
  try {
    // With worker dynos of their own (MALLET_WORKER=0), serve only ingests.
    // serve runs its worker in a thread of its own (README "Scaling"); a worker process has nothing else to run.
    service = await startService({ config, logger, http: mode === 'serve', worker: mode === 'worker' || (config.inProcessWorker && 'thread') });
  } catch (err) {
    const e = err as Error;
    if (e instanceof MalletError) io.stderr.write(`mallet: ${e.message}\n`);
    else logger.fatal({ err: e }, 'mallet failed to start');
    return 1;
  }
  logger.info({ mode, worker: mode === 'worker' || config.inProcessWorker }, isServeChild()
    ? `mallet serve started (one of the WEB_CONCURRENCY processes${config.inProcessWorker ? ', running the action worker' : ''})`
    : mode === 'serve' && !config.inProcessWorker
    ? 'mallet serve started (MALLET_WORKER=0: action jobs wait for a mallet worker process)'
    : `mallet ${mode} started`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: no new requests, finishing in-flight work');
      const hard = setTimeout(() => {
        logger.error('shutdown took too long: exiting now (running jobs return to the queue)');
        resolve(1);
      }, HARD_EXIT_MS);
      hard.unref();
      service.close().then(() => { clearTimeout(hard); logger.info('bye'); resolve(0); });
    };
    // `on`, not `once`: a second SIGTERM (Heroku signals every process of the dyno, and the
    // process that started this one passes its own on) must not end the graceful stop.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // A child of WEB_CONCURRENCY whose primary is gone (killed): nobody hands it connections.
    if (isServeChild()) process.once('disconnect', () => stop('the primary process is gone'));
  });
}
