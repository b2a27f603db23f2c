import { createHash, createHmac } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { secretDigest, secretMatches } from '../../basicAuth.js';
import { headerValue } from '../headerValue.js';
import type { SyslogMessage } from '../SyslogMessage.js';
import { alertMessage, messageFromText } from './AlertLine.js';

/**
 * Alert webhooks of log services (SPEC §3), each verified its own way
 * (../shared/docs/heroku-drain-protocol.md §5) and turned into messages for the rules.
 */
export interface AlertContext {
  /** Marks a nonce as seen; false when it was seen before (a replay). */
  claimNonce(provider: string, nonce: string): Promise<boolean>;
  now(): number;
}

export interface AlertProvider {
  readonly name: string;
  /** Undefined when accepted, else why not (answered 401). */
  verify(req: FastifyRequest, body: Buffer, ctx: AlertContext): Promise<string | undefined>;
  messages(body: Buffer): SyslogMessage[];
}

/** Bounds what one webhook call can make mallet do. */
export const MAX_ALERT_EVENTS = 1000;
/** Logentries signs the Date header; allow this much clock skew either way. */
const MAX_SKEW_MS = 5 * 60_000;

function header(req: FastifyRequest, name: string): string {
  return headerValue(req.headers[name]);
}

function formPayload(body: Buffer): unknown {
  const payload = new URLSearchParams(body.toString('utf8')).get('payload');
  if (payload === null) throw new Error('form field "payload" is missing');
  return JSON.parse(payload);
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Logentries: `Authorization: LE user:base64(HMAC-SHA1(password, canonical))`, with Date and nonce checks. */
export function logentriesProvider(user: string, password: string): AlertProvider {
  const userDigest = secretDigest(user);
  return {
    name: 'logentries',
    async verify(req, body, ctx) {
      const m = /^LE ([^:\s]+):(\S+)$/.exec(header(req, 'authorization'));
      if (!m) return 'expected Authorization: LE user:signature';
      const date = header(req, 'date');
      const nonce = header(req, 'x-le-nonce');
      const when = Date.parse(date);
      if (!date || Number.isNaN(when) || Math.abs(ctx.now() - when) > MAX_SKEW_MS) return 'Date header missing or not recent';
      if (!/^[A-Za-z0-9+/=_-]{8,128}$/.test(nonce)) return 'X-Le-Nonce header missing or malformed';
      const path = req.url.split('?')[0]!;
      const canonical = ['POST', header(req, 'content-type'), createHash('md5').update(body).digest('base64'), date, path, nonce].join('\n');
      const expected = createHmac('sha1', password).update(canonical).digest('base64');
      if (!secretMatches(m[1]!, userDigest) || !secretMatches(m[2]!, secretDigest(expected))) return 'bad signature';
      if (!(await ctx.claimNonce('logentries', nonce))) return 'nonce already used (replay)';
      return undefined;
    },
    messages(body) {
      const p = asRecord(formPayload(body));
      const event = asRecord(p.event);
      const text = typeof event.m === 'string' ? event.m : undefined;
      if (text === undefined) return [];
      const ts = typeof event.t === 'number' ? new Date(event.t).toISOString().replace('Z', '+00:00') : undefined;
      return [messageFromText(text, ts)];
    },
  };
}

/** Papertrail: no signature exists; the secret token travels in the URL (`?token=`). */
export function papertrailProvider(token: string): AlertProvider {
  const tokenDigest = secretDigest(token);
  return {
    name: 'papertrail',
    async verify(req) {
      const given = new URL(req.url, 'http://x').searchParams.get('token') ?? '';
      return secretMatches(given, tokenDigest) ? undefined : 'bad or missing token';
    },
    messages(body) {
      const p = asRecord(formPayload(body));
      const events = Array.isArray(p.events) ? p.events.slice(0, MAX_ALERT_EVENTS) : [];
      return events.map((raw) => {
        const e = asRecord(raw);
        const message = typeof e.message === 'string' ? e.message : '';
        const ts = typeof e.received_at === 'string' ? e.received_at : undefined;
        // Heroku senders show program `heroku/web.1` or `app/web.1` (source/process).
        const program = typeof e.program === 'string' ? /^([a-z][a-z0-9-]{0,47})\/([^\s/]{1,128})$/.exec(e.program) : null;
        return alertMessage({ source: program?.[1] ?? 'unknown', process: program?.[2] ?? 'unknown', message, timestamp: ts });
      });
    },
  };
}

/**
 * Generic: `X-Mallet-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`; the body is
 * `{"events": [{"source","process","message","timestamp"?} | "heroku logs line"]}`.
 */
export function genericProvider(secret: string): AlertProvider {
  return {
    name: 'generic',
    async verify(req, body) {
      const m = /^sha256=([0-9a-f]{64})$/.exec(header(req, 'x-mallet-signature'));
      if (!m) return 'expected X-Mallet-Signature: sha256=<hex>';
      const expected = createHmac('sha256', secret).update(body).digest('hex');
      return secretMatches(m[1]!, secretDigest(expected)) ? undefined : 'bad signature';
    },
    messages(body) {
      const p = asRecord(JSON.parse(body.toString('utf8')));
      const events = Array.isArray(p.events) ? p.events.slice(0, MAX_ALERT_EVENTS) : [];
      return events.map((raw) => {
        if (typeof raw === 'string') return messageFromText(raw);
        const e = asRecord(raw);
        const str = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : undefined);
        return alertMessage({ source: str('source') ?? 'unknown', process: str('process') ?? 'unknown', message: str('message') ?? '', timestamp: str('timestamp') });
      });
    },
  };
}
