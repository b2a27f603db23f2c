import { describe, expect, it } from 'vitest';
import { compileFirMapping } from '../../../src/rules/FirMapping.js';
import { logMessages, metricMessages } from '../../../src/ingest/otlp/firEvents.js';
import { decodeProtobuf, sniffProtobufSignal } from '../../../src/ingest/otlp/decodeProtobuf.js';
import { WireError, WireWriter } from '../../../src/ingest/otlp/ProtobufWire.js';
import { loadRulesText } from '../../../src/rules/load.js';
import type { OtlpLogs, OtlpMetrics } from '../../../src/ingest/otlp/OtlpRequest.js';

/** The `fir:` mapping from OTLP records to drain messages, its defaults and its configuration. */
const defaults = compileFirMapping(undefined, () => { throw new Error('no errors expected'); });
const log = (body: OtlpLogs['resourceLogs'][number]['scopeLogs'][number]['logRecords'][number]['body'], attributes: [string, string][] = [], resource: [string, string][] = []): OtlpLogs => ({
  signal: 'logs',
  resourceLogs: [{ resource, scopeLogs: [{ scope: '', logRecords: [{ timeUnixNano: '1764620000123456789', observedTimeUnixNano: '0', severityNumber: 17, severityText: 'ERROR', body, attributes, eventName: '' }] }] }],
});

describe('log records → messages', () => {
  it('an app record: source app, the dyno from the resource, the text without its LF, the record time', () => {
    const [m] = logMessages(log('boom\n', [], [['heroku.dyno.name', 'web-12a34b56d-e78f9']]), defaults, 0).messages;
    expect(m).toMatchObject({ appName: 'app', procId: 'web-12a34b56d-e78f9', message: 'boom', timestamp: '2025-12-01T20:13:20.123456+00:00', pri: 11 });
  });

  it('a record attribute overrides the resource; a platform service is source heroku with its PROCID', () => {
    const [own] = logMessages(log('x', [['heroku.dyno.name', 'worker-1a2b3c4d5-zzzz9']], [['heroku.dyno.name', 'web-12a34b56d-e78f9']]), defaults, 0).messages;
    expect(own!.procId).toBe('worker-1a2b3c4d5-zzzz9');
    const [router] = logMessages(log('at=error code=H12', [], [['service.name', 'heroku-router']]), defaults, 0).messages;
    expect(router).toMatchObject({ appName: 'heroku', procId: 'router' });
  });

  it('a key-value body becomes logfmt, so fields conditions read it', () => {
    const [m] = logMessages(log({ kvlist: [['at', 'error'], ['desc', 'Request timeout'], ['service', 30001]] }), defaults, 0).messages;
    expect(m!.message).toBe('at=error desc="Request timeout" service=30001');
  });

  it('a name that is not a dyno name (spaces, too long) is not used as PROCID', () => {
    const [m] = logMessages(log('x', [], [['heroku.dyno.name', 'web 1; rm -rf'], ['host.name', 'web-12a34b56d-e78f9']]), defaults, 0).messages;
    expect(m!.procId).toBe('web-12a34b56d-e78f9');
  });

  it('a dyno-shaped value wins over an earlier attribute holding an id (service.instance.id = HEROKU_DYNO_ID)', () => {
    const [m] = logMessages(log('x', [], [['service.instance.id', 'd97d0ea7-cf3d-411b-b453-d2943a50b456'], ['host.name', 'web-12a34b56d-e78f9']]), defaults, 0).messages;
    expect(m!.procId).toBe('web-12a34b56d-e78f9');
    const [only] = logMessages(log('x', [], [['service.instance.id', 'd97d0ea7-cf3d-411b-b453-d2943a50b456']]), defaults, 0).messages;
    expect(only!.procId).toBe('d97d0ea7-cf3d-411b-b453-d2943a50b456');
  });

  it('the mapping is configuration: another dyno attribute and platform service', () => {
    const r = loadRulesText(`version: 1
fir:
  dyno_attributes: [dyno]
  platform_services: { heroku-postgres: heroku-postgres }
rules:
  - name: x
    match: { message: y }
    actions: [ { type: redis-stop-key } ]
`, 'r.yml', {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [m] = logMessages(log('x', [['dyno', 'web-9z8y7x6w5-abcde'], ['service.name', 'heroku-postgres']], [['heroku.dyno.name', 'web-12a34b56d-e78f9']]), r.ruleSet.fir, 0).messages;
    expect(m).toMatchObject({ appName: 'heroku', procId: 'heroku-postgres' });
  });
});

describe('metric points → runtime-metrics lines', () => {
  const metrics = (list: OtlpMetrics['resourceMetrics'][number]['scopeMetrics'][number]['metrics']): OtlpMetrics => ({
    signal: 'metrics', resourceMetrics: [{ resource: [['heroku.dyno.name', 'web-12a34b56d-e78f9']], scopeMetrics: [{ scope: '', metrics: list }] }],
  });
  const point = (value: number | undefined) => ({ attributes: [], timeUnixNano: '1764620000000000000', value });

  it('usage and limit of one dyno at one time make one line with Cedar\'s sample# fields', () => {
    const out = metricMessages(metrics([
      { name: 'dyno.memory.usage', unit: 'By', type: 'gauge', dataPoints: [point(470 * 1048576)], otherPoints: 0 },
      { name: 'dyno.memory.limit', unit: 'By', type: 'gauge', dataPoints: [point(512 * 1048576)], otherPoints: 0 },
      { name: 'dyno.cpu.utilization', unit: '1', type: 'gauge', dataPoints: [point(0.25)], otherPoints: 0 },
      { name: 'http.server.duration', unit: 's', type: 'histogram', dataPoints: [], otherPoints: 4 },
      { name: 'dyno.memory.usage', unit: 'By', type: 'gauge', dataPoints: [point(undefined)], otherPoints: 0 },
    ]), defaults, 0);
    expect(out.messages.map((m) => [m.appName, m.procId, m.message])).toEqual([
      ['heroku', 'web-12a34b56d-e78f9', 'source=web-12a34b56d-e78f9 dyno=web-12a34b56d-e78f9 sample#memory_total=470.00MB sample#memory_quota=512.00MB sample#cpu=0.25'],
    ]);
    expect(out.rejected).toBe(1);
    expect(out.unmapped).toBe(4);
  });

  it('without a limit metric, the configured limit of the process type (else "*"), else none', () => {
    const r = loadRulesText(`version: 1
fir:
  memory_quota: { web: 1GB, "*": dyno-1c-0.5gb }
rules:
  - name: x
    match: { message: y }
    actions: [ { type: redis-stop-key } ]
`, 'r.yml', {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const usage = (dyno: string) => ({ signal: 'metrics' as const, resourceMetrics: [{ resource: [['heroku.dyno.name', dyno]] as [string, string][], scopeMetrics: [{ scope: '', metrics: [{ name: 'dyno.memory.usage', unit: 'By', type: 'gauge' as const, dataPoints: [point(700 * 1048576)], otherPoints: 0 }] }] }] });
    const text = (dyno: string, fir = r.ruleSet.fir) => metricMessages(usage(dyno), fir, 0).messages[0]!.message;
    expect(text('web-12a34b56d-e78f9')).toBe('source=web-12a34b56d-e78f9 dyno=web-12a34b56d-e78f9 sample#memory_total=700.00MB sample#memory_quota=1024.00MB');
    expect(text('node-worker-12a34b56d-e78f9')).toMatch(/ sample#memory_quota=512\.00MB$/);
    expect(text('web-12a34b56d-e78f9', defaults)).toBe('source=web-12a34b56d-e78f9 dyno=web-12a34b56d-e78f9 sample#memory_total=700.00MB');
  });

  it('mallet check refuses a memory_quota it cannot read, at its position', () => {
    const r = loadRulesText(`version: 1
fir:
  memory_quota: { web: lots, "Web 1": 1GB }
rules:
  - name: x
    match: { message: y }
    actions: [ { type: redis-stop-key } ]
`, 'r.yml', {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.errors.map((e) => `${e.line}: ${e.message}`).join('\n');
    expect(text).toContain('3: memory limit "lots": expected a size like 512MB or 1GB, or a Fir dyno size like dyno-2c-4gb');
    expect(text).toContain('process type "Web 1"');
  });

  it('a memory metric in an unknown unit is not mapped', () => {
    const out = metricMessages(metrics([{ name: 'dyno.memory.usage', unit: '%', type: 'gauge', dataPoints: [point(93)], otherPoints: 0 }]), defaults, 0);
    expect(out.messages).toHaveLength(0);
    expect(out.unmapped).toBe(1);
  });
});

describe('protobuf wire reader', () => {
  const anyValueString = (s: string) => new WireWriter().string(1, s).finish();
  const record = (body: Uint8Array) => new WireWriter().bytes(5, body).finish();
  const request = (rec: Uint8Array) => new WireWriter().bytes(1, new WireWriter().bytes(2, new WireWriter().bytes(2, rec).finish()).finish()).finish();

  it('reads a hand-built log request and skips unknown fields', () => {
    const rec = Buffer.concat([new WireWriter().varint(99, 7).finish(), record(anyValueString('hello'))]);
    const body = request(rec);
    expect(sniffProtobufSignal(body)).toBe('logs');
    const decoded = decodeProtobuf('logs', body) as OtlpLogs;
    expect(decoded.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body).toBe('hello');
  });

  it('bounds AnyValue nesting: a deeply nested body decodes to null below the bound, without recursion', () => {
    // AnyValue{5: ArrayValue{1: AnyValue{…}}}, 2000 levels, built from the inside out.
    const len = (field: number, inner: Buffer) => Buffer.concat([new WireWriter().varint(field, 0).finish().subarray(0, 1).map((b) => (b & ~7) | 2), varint(inner.length), inner]);
    const varint = (n: number) => { const out: number[] = []; while (n >= 0x80) { out.push((n % 128) | 0x80); n = Math.floor(n / 128); } out.push(n); return Buffer.from(out); };
    let v = Buffer.from(anyValueString('deep'));
    for (let i = 0; i < 2000; i++) v = len(5, len(1, v));
    const decoded = decodeProtobuf('logs', request(record(v))) as OtlpLogs;
    let body: unknown = decoded.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body;
    let depth = 0;
    while (Array.isArray(body)) { body = body[0]; depth++; }
    expect(body).toBeNull();
    expect(depth).toBeLessThanOrEqual(9);
  });

  it.each([
    ['a truncated varint', Buffer.from([0x0a, 0x80])],
    ['a length past the end', Buffer.from([0x0a, 0x05, 0x01])],
    ['field number 0', Buffer.from([0x02, 0x00])],
    ['a known field with the wrong wire type', Buffer.from([0x08, 0x01])],
  ])('refuses %s', (_name, body) => {
    expect(() => decodeProtobuf('logs', body)).toThrow(WireError);
  });
});
