/**
 * A step cannot run yet but nothing is wrong (the shared Heroku API budget is spent, the account
 * pool is nearly empty): the worker puts the job back as delayed without spending an attempt.
 */
export class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
  constructor(message: string, readonly delayMs: number) {
    super(message);
  }
}
