import { pino, type Logger } from 'pino';

/** One logger for the process; secrets are redacted by path wherever they might be logged. */
export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.password', '*.token', '*.redisUrl', '*.url'],
      censor: '[redacted]',
    },
  });
}
export type { Logger };
