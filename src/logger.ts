import { pino, type Logger } from 'pino';

export interface LoggerOptions {
  /** Readable lines (pino-pretty, in pino's transport thread) instead of one JSON object per line. */
  readonly pretty?: boolean;
}

/**
 * One logger for the process; secrets are redacted by path wherever they might be logged. JSON
 * for log routers (Heroku, Docker); pretty lines for a person at a terminal.
 */
export function createLogger(level = 'info', opts: LoggerOptions = {}): Logger {
  const options = {
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.password', '*.token', '*.redisUrl', '*.url'],
      censor: '[redacted]',
    },
  };
  if (!opts.pretty) return pino(options);
  // A transport formats off the main thread and is flushed by pino on exit.
  return pino(options, pino.transport({
    target: 'pino-pretty',
    options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: false },
  }));
}

/** MALLET_LOG_FORMAT wins; otherwise pretty exactly when stdout is a terminal. */
export function wantsPrettyLogs(format: 'pretty' | 'json' | undefined, stdout: { isTTY?: boolean }): boolean {
  return format === undefined ? stdout.isTTY === true : format === 'pretty';
}
export type { Logger };
