import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw } from 'node:zlib';

/**
 * Content-Encoding of an OTLP body, inflated with a byte cap: zlib's `maxOutputLength` stops the
 * stream as soon as the output passes the cap, so a decompression bomb costs at most the cap in
 * memory and a few chunks of work, never its full size (OTLP spec: the size limit applies after
 * decompression too).
 */
export type Decompressed =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly status: 400 | 413 | 415; readonly error: string };

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);

export async function decompress(body: Buffer, encoding: string, maxBytes: number): Promise<Decompressed> {
  const enc = encoding.trim().toLowerCase();
  if (enc === '' || enc === 'identity') return { ok: true, body };
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return { ok: true, body: await gunzipAsync(body, { maxOutputLength: maxBytes }) };
    if (enc === 'deflate') {
      // HTTP's deflate is zlib-wrapped (RFC 9110 §8.4.1.2); some senders send raw deflate instead.
      const zlibWrapped = body.length >= 2 && (body[0]! & 0x0f) === 8 && ((body[0]! << 8) | body[1]!) % 31 === 0;
      return { ok: true, body: await (zlibWrapped ? inflateAsync : inflateRawAsync)(body, { maxOutputLength: maxBytes }) };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return { ok: false, status: 413, error: `body over ${maxBytes} bytes once decompressed` };
    }
    return { ok: false, status: 400, error: `cannot decompress the ${enc} body: ${(err as Error).message}` };
  }
  return { ok: false, status: 415, error: `unsupported Content-Encoding ${JSON.stringify(enc.slice(0, 40))} (gzip, deflate or none)` };
}
