import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * A content-type parser that hands on the body's bytes as they arrived. Fastify's
 * `parseAs: 'buffer'` concatenates every body into a fresh buffer, even one that arrived in a
 * single chunk (most drain bodies: 100 lines are ~25 KiB, one socket read): that copy and its
 * allocation are made per request for nothing, since the parser only reads the bytes and keeps
 * no view of them past the request. A body of several chunks is concatenated once, as before.
 *
 * Same refusals as Fastify's own reader: over `limit` (declared or received) 413, a body whose
 * length is not the declared one 400, a stream error 400.
 */
export function rawBodyParser(limit: number) {
  return (req: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: Buffer) => void): void => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      done(refusal(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large'));
      return;
    }
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let received = 0;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(chunk: Buffer): void {
      received += chunk.length;
      if (received > limit) {
        stop();
        done(refusal(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large'));
        return;
      }
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    }
    function onEnd(err?: Error & { statusCode?: number }): void {
      stop();
      if (err != null) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        done(err);
        return;
      }
      if (!Number.isNaN(declared) && received !== declared) {
        done(refusal(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'Request body size did not match Content-Length'));
        return;
      }
      done(null, chunks !== undefined ? Buffer.concat(chunks, received) : (first ?? EMPTY));
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  };
}

const EMPTY = Buffer.alloc(0);

function refusal(statusCode: number, code: string, message: string): Error {
  return Object.assign(new Error(message), { statusCode, code });
}
