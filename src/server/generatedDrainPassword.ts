import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.js';

/** Where a generated drain password is kept, relative to where mallet runs (beside `.mallet/redis`). */
export const GENERATED_DRAIN_PASSWORD_FILE = join('.mallet', 'drain-password');

/**
 * Without MALLET_DRAIN_PASSWORD outside production: a password for this run only, written to a
 * file only its owner can read and never printed. Start-up output is log output (Heroku, Docker
 * and CI keep it, and a drain may forward it), so no password, and no URL with one in it, goes
 * there.
 */
export function generateDrainPassword(logger: Logger, port: number, cwd = process.cwd()): string {
  const password = randomBytes(18).toString('base64url');
  const file = join(cwd, GENERATED_DRAIN_PASSWORD_FILE);
  try {
    mkdirSync(join(cwd, '.mallet'), { recursive: true });
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
    chmodSync(file, 0o600); // an existing file keeps its mode on write
  } catch (err) {
    // A read-only working directory (a container image): serve anyway; no drain can log in.
    logger.warn({ err: (err as Error).message }, `MALLET_DRAIN_PASSWORD is not set and ${GENERATED_DRAIN_PASSWORD_FILE} cannot be written: drains are refused until MALLET_DRAIN_PASSWORD is set`);
    return password;
  }
  logger.warn(
    { file: GENERATED_DRAIN_PASSWORD_FILE, drain: `http://localhost:${port}/drains/<app>` },
    `MALLET_DRAIN_PASSWORD is not set: generated one for this run only, in ${GENERATED_DRAIN_PASSWORD_FILE} (not printed). `
      + `Drains: http://localhost:${port}/drains/<app> with basic auth, any user name and that password. Set MALLET_DRAIN_PASSWORD before registering a drain.`,
  );
  // SPEC §2 prints the drain URL once. A person at a terminal gets it there (a terminal is not
  // kept); output that is captured (a pipe, a file, a platform's log) never does.
  if (process.stdout.isTTY) process.stdout.write(`Drain URL (shown once, on this terminal only): http://mallet:${password}@localhost:${port}/drains/<app>\n`);
  return password;
}
