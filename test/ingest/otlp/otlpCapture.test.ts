import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { OtlpCapture, type CaptureRecord } from '../../../src/ingest/otlp/OtlpCapture.js';
import type { OtlpLogs } from '../../../src/ingest/otlp/OtlpRequest.js';

/** MALLET_OTLP_CAPTURE: bounded in count and size, secrets out of the headers. */
function record(body: string): CaptureRecord {
  const logs: OtlpLogs = { signal: 'logs', resourceLogs: [{ resource: [], scopeLogs: [{ scope: '', logRecords: [{ timeUnixNano: '0', observedTimeUnixNano: '0', severityNumber: 9, severityText: '', body, attributes: [], eventName: '' }] }] }] };
  return {
    app: 'fir-app', path: '/otlp/fir-app/v1/logs', receivedAt: Date.UTC(2026, 11, 1), bytes: 10, decodedBytes: 20, status: 200, body: logs,
    headers: { authorization: 'Bearer s3cret-token', 'x-honeycomb-team': 'k', 'x-api-key': 'k2', 'x-my-drain-secret': 's', 'user-agent': 'OTel-Collector/1.0', 'content-type': 'application/x-protobuf' },
  };
}

describe('OtlpCapture', () => {
  it('stops at maxFiles and cuts a body over maxFileBytes, keeping the envelope', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mallet-capture-')), 'out');
    const capture = new OtlpCapture(dir, pino({ level: 'silent' }), { maxFiles: 2, maxFileBytes: 4096, rawPrefixBytes: 64 });
    await capture.capture(record('small'));
    await capture.capture(record('x'.repeat(100_000)));
    await capture.capture(record('third'));
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(2);
    const [small, big] = files.map((f) => readFileSync(join(dir, f), 'utf8'));
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4096);
    expect(JSON.parse(small!).body.resourceLogs[0].scopeLogs[0].logRecords[0].body).toBe('small');
    const cut = JSON.parse(big!);
    expect(cut.bodyTruncated).toBe(true);
    expect(cut.bodyPrefix.startsWith('{"signal":"logs"')).toBe(true);
    for (const text of [small!, big!]) {
      expect(text).not.toMatch(/s3cret|"k2?"|"s"/);
      expect(JSON.parse(text).headers).toMatchObject({ authorization: '[redacted]', 'x-api-key': '[redacted]', 'user-agent': 'OTel-Collector/1.0' });
    }
  });
});
