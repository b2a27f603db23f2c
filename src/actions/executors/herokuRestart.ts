import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../keys.js';
import type { HerokuRestartActionSpec } from '../../rules/Firing.js';
import { hasShape, processTypeOf } from '../../rules/shapes.js';
import { PermanentStepError, type Executor } from '../Executor.js';
import { RetryLaterError } from '../RetryLaterError.js';
import { takeHerokuBudget } from '../scripts/herokuBudget.js';
import { MALLET_USER_AGENT } from './userAgent.js';

/**
 * The account pool holds 4500 requests and refills 4500 per hour, shared by every token and tool
 * of the account (../shared/docs/heroku-drain-protocol.md §4.2). mallet takes at most 10 % of it:
 * 450 requests in any rolling hour, counted in Redis across every worker using the same token.
 */
export const HEROKU_BUDGET_PER_HOUR = 450;
/** Below this `RateLimit-Remaining` the account is nearly out; wait for the pool to refill
 * (75 per minute) rather than take the last requests or meet a 429. */
export const HEROKU_MIN_REMAINING = 100;
const HOUR_MS = 3_600_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A 429 without `Retry-After` waits a minute: the pool refills 75 tokens in that time. */
export const HEROKU_RATE_LIMIT_WAIT_MS = 60_000;


export interface HerokuRestartOptions {
  apiUrl: string;
  /** HEROKU_API_TOKEN; the app's `heroku_api_token` and then an action's `tokenRef` override it. */
  defaultToken?: string;
  /** apps.X.heroku_api_token reference of an app. */
  appTokenRef?: (app: string) => string | undefined;
  /** mallet's own Redis, for the shared budget. */
  redis: Redis;
  keys: RedisKeys;
  minRemaining?: number;
}

/** Restarts a dyno or a process type through the Platform API (SPEC §5): done on 202. */
export function herokuRestartExecutor(opts: HerokuRestartOptions): Executor<HerokuRestartActionSpec> {
  const base = opts.apiUrl.replace(/\/+$/, '');
  return {
    type: 'heroku-restart',
    repeatable: false,
    async run(action, ctx) {
      const path = restartPath(action);
      const ref = action.tokenRef ?? opts.appTokenRef?.(action.app);
      const token = ref !== undefined ? ctx.resolveRef(ref) : opts.defaultToken;
      if (!token) throw new PermanentStepError('no Platform API token: set HEROKU_API_TOKEN or apps.<app>.heroku_api_token');
      const tokenHash = createHash('sha256').update(token).digest('hex').slice(0, 16);
      const keys = { budget: opts.keys.herokuBudget(tokenHash), remaining: opts.keys.herokuRemaining(tokenHash) };

      const budget = await takeHerokuBudget(opts.redis, keys, ctx.now(), {
        windowMs: HOUR_MS,
        max: HEROKU_BUDGET_PER_HOUR,
        requestId: `${ctx.jobId}/${ctx.stepIndex}/${randomBytes(4).toString('hex')}`,
        minRemaining: opts.minRemaining ?? HEROKU_MIN_REMAINING,
      });
      if (!budget.ok) throw new RetryLaterError(`Platform API budget spent; retrying in ${Math.ceil(budget.waitMs / 1000)} s`, budget.waitMs);

      // From here a retry must not send it again unless this run learns it had no effect.
      await ctx.markSent();
      let res: Response;
      try {
        res = await send(`${base}${path}`, token);
      } catch (err) {
        if (err instanceof NotSentError) await ctx.unmarkSent();
        throw err;
      }
      const remaining = res.headers.get('ratelimit-remaining');
      if (remaining !== null && /^\d+$/.test(remaining)) {
        // Best effort: failing to remember the header must not fail a restart that was done.
        await opts.redis.set(keys.remaining, remaining, 'PX', 60_000).catch(() => {});
      }
      const requestId = safeHeader(res.headers.get('request-id'));
      const tail = `(Request-Id ${requestId ?? '-'}, RateLimit-Remaining ${remaining ?? '-'})`;
      if (res.status === 202 || res.status === 200) {
        await res.body?.cancel();
        return { summary: `DELETE ${path} → ${res.status} ${tail}` };
      }
      const error = await readError(res);
      const what = `DELETE ${path} → ${res.status} ${error.id}: ${error.message} ${tail}`;
      if (res.status === 429) {
        // The account pool is empty: an attempt spent here would only fail the job after 8 of
        // them. Every worker on this token holds off for the same time, then the job retries.
        const waitMs = retryAfterMs(res.headers.get('retry-after'), ctx.now()) ?? HEROKU_RATE_LIMIT_WAIT_MS;
        await ctx.unmarkSent();
        await opts.redis.set(keys.remaining, '0', 'PX', waitMs);
        throw new RetryLaterError(`${what}; waiting ${Math.ceil(waitMs / 1000)} s for the account pool`, waitMs);
      }
      // The API answered with an error, so it did not restart: a retry (5xx) may send it again.
      await ctx.unmarkSent();
      if (res.status >= 500) throw new Error(what);
      throw new PermanentStepError(what);
    },
  };
}

export function restartPath(action: HerokuRestartActionSpec): string {
  // Checked again here, where the path is built: job data may have been written by another version.
  if (!hasShape('appName', action.app)) throw new PermanentStepError('heroku-restart: app name does not have the shape of a Heroku app name');
  const app = encodeURIComponent(action.app);
  if (action.scope === 'process-type') {
    const type = processTypeOf(action.dyno);
    if (!hasShape('processType', type)) throw new PermanentStepError('heroku-restart: process type does not have the shape of a process type (web, node-worker)');
    return `/apps/${app}/formations/${encodeURIComponent(type)}`;
  }
  if (!hasShape('dyno', action.dyno)) throw new PermanentStepError('heroku-restart: dyno does not have the shape of a dyno name (Cedar web.1, Fir web-12a34b56d-e78f9)');
  return `/apps/${app}/dynos/${encodeURIComponent(action.dyno)}`;
}

async function send(url: string, token: string): Promise<Response> {
  try {
    return await fetch(url, {
      method: 'DELETE',
      headers: {
        Accept: 'application/vnd.heroku+json; version=3',
        Authorization: `Bearer ${token}`,
        'User-Agent': MALLET_USER_AGENT,
      },
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    // The message names the cause, never the token. Only a connection that was never made
    // proves the request did not reach Heroku; after a reset or a timeout it may have restarted.
    const cause = networkCause(err);
    if (NEVER_CONNECTED.has(cause)) throw new NotSentError(`Platform API unreachable: ${cause}`);
    throw new Error(`Platform API did not answer (${cause}): the restart may have happened; not sending it again`);
  }
}

/** Connection errors that happen before any byte of the request is sent. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

class NotSentError extends Error {}

async function readError(res: Response): Promise<{ id: string; message: string }> {
  const text = (await res.text().catch(() => '')).slice(0, 4096);
  try {
    const body = JSON.parse(text) as { id?: unknown; message?: unknown };
    return {
      id: typeof body.id === 'string' ? body.id.slice(0, 100) : 'unknown',
      message: typeof body.message === 'string' ? body.message.replace(/\s+/g, ' ').slice(0, 500) : res.statusText,
    };
  } catch {
    return { id: 'unknown', message: res.statusText };
  }
}

/** `Retry-After` as seconds or an HTTP date, kept between 1 s and an hour; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  // An HTTP date starts with the day name (`Wed, 01 May 2024 …`); Date.parse alone takes `-5` as a year.
  const ms = /^\d{1,9}$/.test(v) ? Number(v) * 1000 : /^[A-Za-z]{3,9}, /.test(v) ? Date.parse(v) - now : NaN;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(HOUR_MS, Math.max(1000, ms));
}

function safeHeader(value: string | null): string | undefined {
  return value !== null && /^[A-Za-z0-9._-]{1,100}$/.test(value) ? value : undefined;
}

export function networkCause(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  return e?.cause?.code ?? e?.name ?? 'network error';
}

