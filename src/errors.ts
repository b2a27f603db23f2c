/**
 * Every error mallet raises on purpose is created here, once, with a stable code. Codes appear in
 * logs and CLI output; the README's "Errors" section lists them (a test keeps the two in step).
 */
export const ERROR_CODES = {
  MALLET_CONFIG_INVALID: 'the environment is invalid',
  MALLET_REDIS_MISSING: 'no REDIS_URL and no redis-server on PATH',
  MALLET_REDIS_IN_USE: 'another mallet runs its embedded redis-server in this folder',
  MALLET_RULES_INVALID: 'the rules file failed validation',
  MALLET_STORE_UNAVAILABLE: 'Redis could not store the firings of a body',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MalletError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];
  constructor(code: ErrorCode, message: string, details: readonly string[] = []) {
    super(message);
    this.name = 'MalletError';
    this.code = code;
    this.details = details;
  }
}
