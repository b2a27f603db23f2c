import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { IncomingHttpHeaders } from 'node:http';
import type { OtlpRequest } from './OtlpRequest.js';

/**
 * `MALLET_OTLP_CAPTURE=DIR`: each authenticated OTLP request written to DIR as one JSON file
 * (headers without secrets, the decoded body), to settle what Heroku really sends
 * (../shared/docs/heroku-fir-telemetry.md §8). Bounded: at most `maxFiles` files per process and
 * `maxFileBytes` per file (a longer body is cut, and the file says so). Writes never hold up
 * the response, and a failed write is logged, not answered.
 */
export interface CaptureRecord {
  readonly app: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly receivedAt: number;
  readonly bytes: number;
  readonly decodedBytes: number;
  readonly status: number;
  readonly body?: OtlpRequest | undefined;
  readonly error?: string | undefined;
  /** The undecodable body's first bytes, base64, for a look at what failed. */
  readonly rawPrefix?: Buffer | undefined;
}

export interface CaptureBounds { readonly maxFiles: number; readonly maxFileBytes: number; readonly rawPrefixBytes: number }
export const CAPTURE_BOUNDS: CaptureBounds = Object.freeze({ maxFiles: 500, maxFileBytes: 256 * 1024, rawPrefixBytes: 4096 });

/**
 * Headers whose values are kept; every other value is replaced. An allow-list, because
 * `--headers` is free-form (Heroku's TF docs) and vendors name their secrets anything
 * (`x-honeycomb-team` is an API key): the names still show what arrived.
 */
const KEPT_HEADERS = new Set([
  'content-type', 'content-encoding', 'content-length', 'transfer-encoding', 'user-agent', 'accept', 'accept-encoding',
  'connection', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'x-request-id', 'x-request-start', 'via',
]);

export class OtlpCapture {
  #written = 0;
  #full = false;
  #dirReady: Promise<unknown> | undefined;

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
    private readonly bounds: CaptureBounds = CAPTURE_BOUNDS,
  ) {}

  get written(): number {
    return this.#written;
  }

  /** Starts the write and returns its promise (tests await it; the route does not). */
  capture(rec: CaptureRecord): Promise<void> {
    if (this.#written >= this.bounds.maxFiles) {
      if (!this.#full) {
        this.#full = true;
        this.logger.warn({ dir: this.dir, files: this.#written }, 'OTLP capture: file limit reached, capturing stops (restart to capture more)');
      }
      return Promise.resolve();
    }
    const n = ++this.#written;
    const name = `${new Date(rec.receivedAt).toISOString().replace(/[:.]/g, '-')}-${String(n).padStart(4, '0')}-${rec.app}.json`;
    const text = captureText(rec, this.bounds.maxFileBytes, this.bounds.rawPrefixBytes);
    this.#dirReady ??= mkdir(this.dir, { recursive: true });
    return this.#dirReady
      .then(() => writeFile(join(this.dir, name), text, { mode: 0o600 }))
      .catch((err: Error) => { this.logger.warn({ dir: this.dir, err: err.message }, 'OTLP capture: could not write a file'); });
  }
}

export function redactHeaders(headers: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = KEPT_HEADERS.has(k) ? v : '[redacted]';
  return out;
}

function captureText(rec: CaptureRecord, maxBytes: number, rawPrefixBytes: number): string {
  const envelope = {
    app: rec.app,
    path: rec.path,
    receivedAt: new Date(rec.receivedAt).toISOString(),
    status: rec.status,
    bytes: rec.bytes,
    decodedBytes: rec.decodedBytes,
    headers: redactHeaders(rec.headers),
    ...(rec.error !== undefined ? { error: rec.error } : {}),
    ...(rec.rawPrefix !== undefined ? { rawPrefixBase64: rec.rawPrefix.subarray(0, rawPrefixBytes).toString('base64') } : {}),
  };
  const full = JSON.stringify({ ...envelope, body: rec.body ?? null }, null, 1);
  if (Buffer.byteLength(full) <= maxBytes) return full;
  // Cut: the envelope whole, then as much of the body's JSON text as fits.
  const head = JSON.stringify({ ...envelope, bodyTruncated: true }, null, 1);
  const room = Math.max(0, maxBytes - Buffer.byteLength(head) - 64);
  const bodyText = JSON.stringify(rec.body ?? null);
  return JSON.stringify({ ...envelope, bodyTruncated: true, bodyPrefix: Buffer.from(bodyText).subarray(0, room).toString('utf8') }, null, 1);
}
