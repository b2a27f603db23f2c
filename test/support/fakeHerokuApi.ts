import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

/**
 * A local stand-in for the Heroku Platform API (../shared/docs/heroku-drain-protocol.md §4): the
 * restart paths, the `Accept` check (406), `Request-Id` and `RateLimit-Remaining` on every
 * answer, and JSON errors `{id, message, url}`. Tests queue the answers they want and read back
 * every request with its start and end time (to check that restarts did not overlap).
 */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly startedAt: number;
  endedAt: number;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Hold the answer this long (ms), so overlapping requests show up in start/end times. */
  delayMs?: number;
  /** Act on the request, then drop the connection without an answer (a reset after sending). */
  hangUp?: boolean;
}

export type Responder = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;

export interface FakeHerokuApi {
  readonly url: string;
  readonly requests: FakeRequest[];
  /** A function answering every request, or a queue used up first (then the default 202). */
  respondWith(fn: Responder | FakeResponse[]): void;
  close(): Promise<void>;
}

export const ERRORS = {
  rateLimit: (): FakeResponse => ({
    status: 429,
    headers: { 'RateLimit-Remaining': '0' },
    body: { id: 'rate_limit', message: 'Your account reached the API rate limit\nPlease wait a few minutes before making new requests', url: 'https://devcenter.heroku.com/articles/platform-api-reference#rate-limits' },
  }),
  notFound: (what = 'dyno'): FakeResponse => ({ status: 404, body: { id: 'not_found', message: `Couldn't find that ${what}.`, url: null } }),
  unauthorized: (): FakeResponse => ({ status: 401, body: { id: 'unauthorized', message: 'Invalid credentials provided.', url: null } }),
  unavailable: (): FakeResponse => ({ status: 503, body: { id: 'service_unavailable', message: 'Service temporarily unavailable.', url: null } }),
};

const ACCEPT = 'application/vnd.heroku+json; version=3';
const RESTART = /^\/apps\/[^/]+\/(dynos\/[^/]+|dynos|formations\/[^/]+)$/;

export async function startFakeHerokuApi(opts: { remaining?: number; delayMs?: number } = {}): Promise<FakeHerokuApi> {
  const app = Fastify({ logger: false });
  const requests: FakeRequest[] = [];
  let queue: FakeResponse[] = [];
  let responder: Responder | undefined;
  let remaining = opts.remaining ?? 4499;

  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.route({
    method: ['GET', 'POST', 'PATCH', 'DELETE', 'PUT'],
    url: '/*',
    handler: async (req, reply) => {
      const record: FakeRequest = {
        method: req.method,
        path: req.url,
        headers: { ...req.headers },
        body: typeof req.body === 'string' ? req.body : '',
        startedAt: Date.now(),
        endedAt: 0,
      };
      requests.push(record);
      let res: FakeResponse;
      if (req.headers.accept !== ACCEPT) {
        res = { status: 406, body: { id: 'not_acceptable', message: 'Please specify a version along with Heroku\'s API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.', url: null } };
      } else if (!/^Bearer \S+$/.test(String(req.headers.authorization ?? ''))) {
        res = ERRORS.unauthorized();
      } else if (queue.length > 0) {
        res = queue.shift()!;
      } else if (responder) {
        res = await responder(record);
      } else if (req.method === 'DELETE' && RESTART.test(req.url.split('?')[0]!)) {
        res = { status: 202, body: {} };
      } else {
        res = ERRORS.notFound('resource');
      }
      const delay = res.delayMs ?? opts.delayMs ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (res.status !== 429) remaining = Math.max(0, remaining - 1);
      record.endedAt = Date.now();
      if (res.hangUp) {
        req.raw.socket.destroy();
        return reply.hijack();
      }
      void reply
        .code(res.status)
        .header('Request-Id', randomUUID())
        .header('RateLimit-Remaining', String(remaining))
        .headers(res.headers ?? {})
        .header('Content-Type', 'application/json');
      return JSON.stringify(res.body ?? {});
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    respondWith(fn) {
      if (Array.isArray(fn)) queue = [...fn];
      else responder = fn;
    },
    close: () => app.close(),
  };
}
