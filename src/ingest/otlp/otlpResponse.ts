import { WireWriter } from './ProtobufWire.js';
import type { OtlpSignal } from './OtlpRequest.js';

/**
 * Response bodies of the OTLP/HTTP specification, in the request's encoding: success is an
 * `Export<Signal>ServiceResponse` (empty, or `partial_success` {1: rejected count, 2: message}),
 * failure a `google.rpc.Status` {1: code, 2: message}.
 */
export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPE: Readonly<Record<OtlpEncoding, string>> = { protobuf: 'application/x-protobuf', json: 'application/json' };

const REJECTED_FIELD: Readonly<Record<OtlpSignal, string>> = {
  logs: 'rejectedLogRecords', metrics: 'rejectedDataPoints', traces: 'rejectedSpans',
};

export function exportResponse(encoding: OtlpEncoding, signal: OtlpSignal | undefined, rejected: number, message: string): Buffer {
  if (rejected === 0 || signal === undefined) return encoding === 'json' ? Buffer.from('{}') : Buffer.alloc(0);
  if (encoding === 'json') {
    return Buffer.from(JSON.stringify({ partialSuccess: { [REJECTED_FIELD[signal]]: String(rejected), errorMessage: message } }));
  }
  const partial = new WireWriter().varint(1, rejected).string(2, message).finish();
  return new WireWriter().bytes(1, partial).finish();
}

/** gRPC codes for the HTTP statuses mallet answers (google.rpc.Code). */
const GRPC_CODE: Readonly<Record<number, number>> = { 400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14 };

export function statusBody(encoding: OtlpEncoding, httpStatus: number, message: string): Buffer {
  const code = GRPC_CODE[httpStatus] ?? 2;
  if (encoding === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return new WireWriter().varint(1, code).string(2, message).finish();
}
