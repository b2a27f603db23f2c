import type { FirMapping } from '../../rules/FirMapping.js';
import type { SyslogMessage } from '../SyslogMessage.js';
import { decodeJson, JsonShapeError, parseOtlpJson, sniffJsonSignal } from './decodeJson.js';
import { logMessages, metricMessages } from './firEvents.js';
import type { OtlpRequest } from './OtlpRequest.js';

/**
 * An OTLP export kept in a file, as the messages the receiver would make of it (`mallet test`'s
 * `otlp:` lines). Two forms: an OTLP/JSON request body (what the SDK's JSON exporter sends), or a
 * `MALLET_OTLP_CAPTURE` file (its `body` is the decoded request), so a capture from a real Fir
 * app becomes a test fixture as is.
 */
export function otlpFileMessages(bytes: Uint8Array, fir: FirMapping, receivedAt: number): SyslogMessage[] {
  const root = parseOtlpJson(bytes);
  let request: OtlpRequest | undefined;
  const captured = root.body as { signal?: unknown } | undefined;
  if (captured !== null && typeof captured === 'object' && typeof captured.signal === 'string') {
    request = captured as OtlpRequest;
  } else {
    const signal = sniffJsonSignal(root);
    if (signal === undefined) throw new JsonShapeError('neither an OTLP/JSON request (resourceLogs, resourceMetrics) nor a capture file');
    request = decodeJson(signal, root);
  }
  if (request.signal === 'logs') return logMessages(request, fir, receivedAt).messages;
  if (request.signal === 'metrics') return metricMessages(request, fir, receivedAt).messages;
  return [];
}
