import {
  int64Value, MAX_VALUE_DEPTH,
  type AnyValue, type Attributes, type MetricType, type OtlpLogRecord, type OtlpLogs, type OtlpMetric, type OtlpMetrics,
  type OtlpNumberPoint, type OtlpRequest, type OtlpSignal,
} from './OtlpRequest.js';

/**
 * OTLP/JSON (the OTLP specification's "JSON Protobuf Encoding"): proto3 JSON with lowerCamelCase
 * keys, int64 as decimal strings (numbers accepted too), enums as integers, unknown keys ignored.
 * A value of the wrong type is an undecodable body (JsonShapeError → 400).
 */
export class JsonShapeError extends Error {}

type Obj = Readonly<Record<string, unknown>>;

const ROOT_KEY: Readonly<Record<OtlpSignal, string>> = { logs: 'resourceLogs', metrics: 'resourceMetrics', traces: 'resourceSpans' };

export function parseOtlpJson(buf: Uint8Array): Obj {
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
  } catch (e) {
    throw new JsonShapeError(`not JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  return obj(data, 'the request');
}

/** The bare path's signal from the root key present; undefined: none (an empty request). */
export function sniffJsonSignal(root: Obj): OtlpSignal | undefined {
  for (const s of ['logs', 'metrics', 'traces'] as const) if (root[ROOT_KEY[s]] !== undefined) return s;
  return undefined;
}

export function decodeJson(signal: OtlpSignal, root: Obj): OtlpRequest {
  switch (signal) {
    case 'logs': return decodeLogs(root);
    case 'metrics': return decodeMetrics(root);
    case 'traces': {
      let spans = 0;
      for (const rs of list(root.resourceSpans, 'resourceSpans')) {
        for (const ss of list(obj(rs, 'resourceSpans[]').scopeSpans, 'scopeSpans')) spans += list(obj(ss, 'scopeSpans[]').spans, 'spans').length;
      }
      return { signal: 'traces', spans };
    }
  }
}

function decodeLogs(root: Obj): OtlpLogs {
  return {
    signal: 'logs',
    resourceLogs: list(root.resourceLogs, 'resourceLogs').map((raw) => {
      const rl = obj(raw, 'resourceLogs[]');
      return {
        resource: resourceOf(rl.resource),
        scopeLogs: list(rl.scopeLogs, 'scopeLogs').map((s) => {
          const sl = obj(s, 'scopeLogs[]');
          return { scope: scopeName(sl.scope), logRecords: list(sl.logRecords, 'logRecords').map((l) => logRecord(obj(l, 'logRecords[]'))) };
        }),
      };
    }),
  };
}

function logRecord(l: Obj): OtlpLogRecord {
  return {
    timeUnixNano: uint64(l.timeUnixNano, 'timeUnixNano'),
    observedTimeUnixNano: uint64(l.observedTimeUnixNano, 'observedTimeUnixNano'),
    severityNumber: l.severityNumber === undefined ? 0 : integer(l.severityNumber, 'severityNumber'),
    severityText: l.severityText === undefined ? '' : str(l.severityText, 'severityText'),
    body: l.body === undefined ? undefined : anyValue(l.body, 0),
    attributes: attributes(l.attributes, 0),
    eventName: l.eventName === undefined ? '' : str(l.eventName, 'eventName'),
  };
}

function decodeMetrics(root: Obj): OtlpMetrics {
  return {
    signal: 'metrics',
    resourceMetrics: list(root.resourceMetrics, 'resourceMetrics').map((raw) => {
      const rm = obj(raw, 'resourceMetrics[]');
      return {
        resource: resourceOf(rm.resource),
        scopeMetrics: list(rm.scopeMetrics, 'scopeMetrics').map((s) => {
          const sm = obj(s, 'scopeMetrics[]');
          return { scope: scopeName(sm.scope), metrics: list(sm.metrics, 'metrics').map((m) => metric(obj(m, 'metrics[]'))) };
        }),
      };
    }),
  };
}

const OTHER_TYPES: readonly MetricType[] = ['histogram', 'exponentialHistogram', 'summary'];

function metric(m: Obj): OtlpMetric {
  const name = m.name === undefined ? '' : str(m.name, 'name');
  const unit = m.unit === undefined ? '' : str(m.unit, 'unit');
  for (const type of ['gauge', 'sum'] as const) {
    if (m[type] === undefined) continue;
    const dataPoints = list(obj(m[type], type).dataPoints, 'dataPoints').map((p) => numberPoint(obj(p, 'dataPoints[]')));
    return { name, unit, type, dataPoints, otherPoints: 0 };
  }
  for (const type of OTHER_TYPES) {
    if (m[type] === undefined) continue;
    return { name, unit, type, dataPoints: [], otherPoints: list(obj(m[type], type).dataPoints, 'dataPoints').length };
  }
  return { name, unit, type: 'empty', dataPoints: [], otherPoints: 0 };
}

function numberPoint(p: Obj): OtlpNumberPoint {
  let value: number | undefined;
  if (p.asDouble !== undefined) value = double(p.asDouble, 'asDouble');
  else if (p.asInt !== undefined) value = Number(int64(p.asInt, 'asInt'));
  return { attributes: attributes(p.attributes, 0), timeUnixNano: uint64(p.timeUnixNano, 'timeUnixNano'), value };
}

function resourceOf(raw: unknown): Attributes {
  return raw === undefined || raw === null ? [] : attributes(obj(raw, 'resource').attributes, 0);
}

function scopeName(raw: unknown): string {
  if (raw === undefined || raw === null) return '';
  const name = obj(raw, 'scope').name;
  return name === undefined ? '' : str(name, 'scope.name');
}

function attributes(raw: unknown, depth: number): Attributes {
  return list(raw, 'attributes').map((kv) => {
    const o = obj(kv, 'attributes[]');
    return [o.key === undefined ? '' : str(o.key, 'key'), o.value === undefined || o.value === null ? null : anyValue(o.value, depth)] as const;
  });
}

function anyValue(raw: unknown, depth: number): AnyValue {
  const v = obj(raw, 'value');
  if (v.stringValue !== undefined) return str(v.stringValue, 'stringValue');
  if (v.boolValue !== undefined) {
    if (typeof v.boolValue !== 'boolean') throw new JsonShapeError('boolValue: expected true or false');
    return v.boolValue;
  }
  if (v.intValue !== undefined) return int64Value(int64(v.intValue, 'intValue'));
  if (v.doubleValue !== undefined) return double(v.doubleValue, 'doubleValue');
  if (v.bytesValue !== undefined) return str(v.bytesValue, 'bytesValue');
  if (v.arrayValue !== undefined) {
    if (depth >= MAX_VALUE_DEPTH) return null;
    return list(obj(v.arrayValue, 'arrayValue').values, 'values').map((x) => anyValue(x, depth + 1));
  }
  if (v.kvlistValue !== undefined) {
    if (depth >= MAX_VALUE_DEPTH) return null;
    return { kvlist: attributes(obj(v.kvlistValue, 'kvlistValue').values, depth + 1) };
  }
  return null;
}

function obj(raw: unknown, what: string): Obj {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new JsonShapeError(`${what}: expected an object`);
  return raw as Obj;
}

function list(raw: unknown, what: string): readonly unknown[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new JsonShapeError(`${what}: expected an array`);
  return raw;
}

function str(raw: unknown, what: string): string {
  if (typeof raw !== 'string') throw new JsonShapeError(`${what}: expected a string`);
  return raw;
}

function integer(raw: unknown, what: string): number {
  if (typeof raw !== 'number' || !Number.isInteger(raw)) throw new JsonShapeError(`${what}: expected an integer`);
  return raw;
}

function double(raw: unknown, what: string): number {
  if (typeof raw === 'number') return raw;
  // proto3 JSON writes non-finite doubles as strings.
  if (raw === 'NaN' || raw === 'Infinity' || raw === '-Infinity') return Number(raw);
  if (typeof raw === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw)) return Number(raw);
  throw new JsonShapeError(`${what}: expected a number`);
}

function int64(raw: unknown, what: string): bigint {
  if (typeof raw === 'number' && Number.isInteger(raw)) return BigInt(raw);
  if (typeof raw === 'string' && /^-?\d{1,20}$/.test(raw)) return BigInt(raw);
  throw new JsonShapeError(`${what}: expected an integer or its decimal string`);
}

/** A uint64 time as its decimal string ('0' when absent). */
function uint64(raw: unknown, what: string): string {
  if (raw === undefined || raw === null) return '0';
  const n = int64(raw, what);
  if (n < 0n) throw new JsonShapeError(`${what}: expected an unsigned integer`);
  return n.toString();
}
