import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../../metrics.js';
import type { AppEntry } from '../../rules/RuleSet.js';
import type { FirMapping } from '../../rules/FirMapping.js';
import type { IngestHandler } from '../IngestBatch.js';
import { keepRawBody, MAX_BODY_BYTES, STORE_DEADLINE_MS } from '../drainRoute.js';
import { headerValue } from '../headerValue.js';
import { secretDigest } from '../../basicAuth.js';
import { withDeadline } from '../../deadline.js';
import { decompress } from './decompress.js';
import { decodeProtobuf, sniffProtobufSignal } from './decodeProtobuf.js';
import { decodeJson, parseOtlpJson, sniffJsonSignal } from './decodeJson.js';
import { OTLP_SIGNALS, type OtlpRequest, type OtlpSignal } from './OtlpRequest.js';
import { logMessages, metricMessages, type FirMessages } from './firEvents.js';
import { CONTENT_TYPE, exportResponse, statusBody, type OtlpEncoding } from './otlpResponse.js';
import type { OtlpCapture } from './OtlpCapture.js';
import { ThrottledLog } from '../../throttledLog.js';

/**
 * `POST /otlp/:app/v1/{logs,metrics,traces}` and `POST /otlp/:app` — a Fir app's telemetry drain
 * (OTLP/HTTP, ../shared/docs/heroku-fir-telemetry.md §1–2). Heroku may or may not append
 * `/v1/<signal>` to the endpoint, so the bare path tells the signal from the body.
 *
 * Answers as the OTLP specification asks, since the sender's retry policy follows it: 200 with an
 * (encoded) response, `partial_success` counting what was refused; 400 only for an undecodable
 * body; 401 for a wrong token; 413 over the size bound, before or after decompression; 503 with
 * Retry-After while the firings cannot be stored (the exporter retries 429/502/503/504 only).
 */
export interface OtlpRouteOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly getApps: () => ReadonlyMap<string, AppEntry> | undefined;
  readonly getFir: () => FirMapping;
  readonly ingest: IngestHandler;
  readonly capture?: OtlpCapture | undefined;
  /** The service's rate-limited log (one per process); a private one when absent. */
  readonly log?: ThrottledLog | undefined;
  readonly deadlineMs?: number;
  readonly now?: () => number;
}

/** Bound on the decompressed body, the same as the compressed one's (SPEC §6: body ≤ 1 MiB). */
export const MAX_DECODED_BYTES = MAX_BODY_BYTES;
/** Seconds a sender waits before retrying a 503: the JS exporter retries 5 times only, so 2 s spreads them over the ~10 s a Redis failover or restart takes; the collector's own backoff starts at 5 s anyway. */
const RETRY_AFTER_S = '2';

const authenticated = new WeakMap<FastifyRequest, string>();

export async function otlpRoutes(app: FastifyInstance, opts: OtlpRouteOptions): Promise<void> {
  const { metrics } = opts;
  // An exporter retries every few seconds and a bad sender keeps sending: rate-limited lines per reason and app.
  const log = opts.log ?? new ThrottledLog(opts.logger);
  const deadlineMs = opts.deadlineMs ?? STORE_DEADLINE_MS;
  const now = opts.now ?? Date.now;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/x-protobuf', 'application/protobuf', 'application/json'], { parseAs: 'buffer' }, keepRawBody);

  // The token is checked before the body is read: an unauthenticated sender costs no parsing.
  app.addHook('onRequest', async (req, reply) => {
    const owner = appForToken(bearer(req.headers.authorization), opts.getApps());
    const named = (req.params as { app?: string }).app;
    // The token decides the app; a path naming another app is refused, never believed.
    if (owner === undefined || owner !== named) {
      return sendStatus(reply, encodingOf(req), 401, 'unknown telemetry token for this app (Authorization: Bearer <apps.NAME.telemetry_token>)');
    }
    authenticated.set(req, owner);
  });
  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    metrics.otlpRequestsTotal.inc({ signal: signalLabel(req), status: String(status) });
    if (status >= 400 && status < 500) {
      const named = String((req.params as { app?: string }).app ?? '').slice(0, 30);
      log.warn(`otlp-${status}`, authenticated.get(req) ?? named, { status }, `OTLP request refused (${status})`);
    }
  });

  const handler = async (req: FastifyRequest<{ Params: { app: string; signal?: string } }>, reply: FastifyReply) => {
    const appName = authenticated.get(req)!;
    const encoding = encodingOf(req);
    let signal: OtlpSignal | undefined;
    if (req.params.signal !== undefined) {
      signal = OTLP_SIGNALS.find((s) => s === req.params.signal);
      if (signal === undefined) return sendStatus(reply, encoding, 404, 'unknown signal: expected /v1/logs, /v1/metrics or /v1/traces');
    }
    // No body at all (no content to parse) is an empty request: a success, like any empty export.
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const receivedAt = now();
    const capture = (status: number, extra: { body?: OtlpRequest; error?: string; decoded?: Buffer }) => {
      void opts.capture?.capture({
        app: appName, path: req.url.split('?')[0]!.slice(0, 200), headers: req.headers, receivedAt, bytes: raw.length,
        decodedBytes: extra.decoded?.length ?? 0, status, body: extra.body, error: extra.error,
        rawPrefix: extra.error !== undefined ? (extra.decoded ?? raw) : undefined,
      });
    };

    const inflated = await decompress(raw, headerValue(req.headers['content-encoding']), MAX_DECODED_BYTES);
    if (!inflated.ok) {
      capture(inflated.status, { error: inflated.error });
      return sendStatus(reply, encoding, inflated.status, inflated.error);
    }
    const body = inflated.body;

    let request: OtlpRequest | undefined;
    try {
      if (encoding === 'json') {
        const root = parseOtlpJson(body);
        signal ??= sniffJsonSignal(root);
        if (signal !== undefined) request = decodeJson(signal, root);
      } else {
        signal ??= sniffProtobufSignal(body);
        if (signal !== undefined) request = decodeProtobuf(signal, body);
      }
    } catch (err) {
      const why = `undecodable ${encoding} body: ${(err as Error).message}`;
      capture(400, { error: why, decoded: body });
      return sendStatus(reply, encoding, 400, why);
    }
    (req as { otlpSignal?: OtlpSignal }).otlpSignal = signal;
    // An empty request (no resource at all) is a success (OTLP spec).
    if (request === undefined) {
      capture(200, { decoded: body });
      return sendExport(reply, encoding, signal, 0, '');
    }
    if (request.signal === 'traces') {
      capture(200, { body: request, decoded: body });
      metrics.otlpItemsTotal.inc({ signal: 'traces', outcome: 'dropped' }, request.spans);
      return sendExport(reply, encoding, signal, 0, '');
    }

    const fir = opts.getFir();
    const mapped: FirMessages = request.signal === 'logs' ? logMessages(request, fir, receivedAt) : metricMessages(request, fir, receivedAt);
    let duplicate = false;
    if (mapped.messages.length > 0) {
      try {
        const outcome = await withDeadline(opts.ingest({
          app: appName,
          // OTLP has no frame id: a retried export is the same bytes, so their digest is its id.
          drainToken: `otlp-${request.signal}`,
          frameId: createHash('sha1').update(body).digest('hex'),
          dedupe: true,
          receivedAt,
          messages: mapped.messages,
        }), deadlineMs);
        if (outcome === 'timeout') {
          log.error('otlp-store-timeout', appName, { signal }, `storing the firings of an OTLP export took over ${deadlineMs} ms: answering 503 so the exporter retries`);
          return sendUnavailable(reply, encoding, 'store timeout, retry');
        }
        duplicate = outcome.duplicate;
      } catch (err) {
        log.error('otlp-store-failed', appName, { signal, err: (err as Error).message }, 'could not store the firings of an OTLP export: answering 503 so the exporter retries');
        return sendUnavailable(reply, encoding, 'store unavailable, retry');
      }
    }
    capture(200, { body: request, decoded: body });
    if (!duplicate) {
      const s = request.signal;
      if (mapped.messages.length > 0) metrics.otlpItemsTotal.inc({ signal: s, outcome: 'accepted' }, mapped.messages.length);
      if (mapped.rejected > 0) metrics.otlpItemsTotal.inc({ signal: s, outcome: 'rejected' }, mapped.rejected);
      if (mapped.unmapped > 0) metrics.otlpItemsTotal.inc({ signal: s, outcome: 'unmapped' }, mapped.unmapped);
    }
    return sendExport(reply, encoding, signal, mapped.rejected, mapped.rejected > 0 ? 'data points without a value were rejected' : '');
  };

  app.post<{ Params: { app: string } }>('/otlp/:app', handler);
  app.post<{ Params: { app: string; signal: string } }>('/otlp/:app/v1/:signal', handler);
}

function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S{1,1000})\s*$/i.exec(header);
  return m?.[1];
}

/**
 * The app whose token this is. Every app's digest is compared (constant time each, no early exit),
 * so the time taken says nothing about which app or how much of a token matched.
 */
function appForToken(token: string | undefined, apps: ReadonlyMap<string, AppEntry> | undefined): string | undefined {
  if (token === undefined || apps === undefined) return undefined;
  const given = secretDigest(token);
  let owner: string | undefined;
  for (const entry of apps.values()) {
    if (entry.telemetryTokenDigest !== undefined && timingSafeEqual(given, entry.telemetryTokenDigest)) owner = entry.name;
  }
  return owner;
}

function encodingOf(req: FastifyRequest): OtlpEncoding {
  return /^application\/json\b/i.test(headerValue(req.headers['content-type'])) ? 'json' : 'protobuf';
}

function signalLabel(req: FastifyRequest): string {
  // Label values from a fixed set only: no path can make new series.
  return (req as { otlpSignal?: OtlpSignal }).otlpSignal ?? OTLP_SIGNALS.find((s) => req.url.endsWith(`/v1/${s}`)) ?? 'unknown';
}

function sendExport(reply: FastifyReply, encoding: OtlpEncoding, signal: OtlpSignal | undefined, rejected: number, message: string) {
  return reply.code(200).type(CONTENT_TYPE[encoding]).send(exportResponse(encoding, signal, rejected, message));
}

function sendStatus(reply: FastifyReply, encoding: OtlpEncoding, status: number, message: string) {
  return reply.code(status).type(CONTENT_TYPE[encoding]).send(statusBody(encoding, status, message));
}

function sendUnavailable(reply: FastifyReply, encoding: OtlpEncoding, message: string) {
  return reply.code(503).header('Retry-After', RETRY_AFTER_S).type(CONTENT_TYPE[encoding]).send(statusBody(encoding, 503, message));
}
