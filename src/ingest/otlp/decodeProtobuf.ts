import { expectWire, WIRE, WireError, WireReader } from './ProtobufWire.js';
import {
  int64Value, MAX_VALUE_DEPTH,
  type AnyValue, type Attributes, type MetricType, type OtlpLogRecord, type OtlpLogs, type OtlpMetric, type OtlpMetrics,
  type OtlpNumberPoint, type OtlpRequest, type OtlpSignal, type OtlpTraces,
} from './OtlpRequest.js';

/**
 * `Export{Logs,Metrics,Trace}ServiceRequest` from protobuf bytes. Field numbers from
 * opentelemetry-proto (collector/*, common/v1, resource/v1, logs/v1, metrics/v1, trace/v1).
 * Unknown fields (newer protos: key_strindex, string_value_strindex, entity refs) are skipped.
 */
export function decodeProtobuf(signal: OtlpSignal, buf: Uint8Array): OtlpRequest {
  const r = new WireReader(buf);
  switch (signal) {
    case 'logs': return decodeLogs(r);
    case 'metrics': return decodeMetrics(r);
    case 'traces': return decodeTraces(r);
  }
}

/**
 * Which request a body on the bare path holds. All three put their resource list in field 1, so
 * the first record decides: a Span has fixed64 start/end times in 7/8, a Metric its name (a string)
 * in 1, a LogRecord neither (its field 1 is a fixed64 time). undefined: no record at all (empty).
 */
export function sniffProtobufSignal(buf: Uint8Array): OtlpSignal | undefined {
  const top = new WireReader(buf);
  while (top.more()) {
    const { field, wire } = top.tag();
    if (field !== 1 || wire !== WIRE.len) { top.skip(wire); continue; }
    const resource = top.message();
    while (resource.more()) {
      const t = resource.tag();
      if (t.field !== 2 || t.wire !== WIRE.len) { resource.skip(t.wire); continue; }
      const scope = resource.message();
      while (scope.more()) {
        const s = scope.tag();
        if (s.field !== 2 || s.wire !== WIRE.len) { scope.skip(s.wire); continue; }
        const record = scope.message();
        let nameString = false;
        while (record.more()) {
          const f = record.tag();
          if ((f.field === 7 || f.field === 8) && f.wire === WIRE.fixed64) return 'traces';
          if (f.field === 1 && f.wire === WIRE.len) nameString = true;
          record.skip(f.wire);
        }
        return nameString ? 'metrics' : 'logs';
      }
    }
  }
  return undefined;
}

function decodeLogs(r: WireReader): OtlpLogs {
  const resourceLogs: OtlpLogs['resourceLogs'][number][] = [];
  r.fields((field, wire) => {
    if (field !== 1) return false;
    expectWire(field, wire, WIRE.len);
    const rl = r.message();
    let resource: Attributes = [];
    const scopeLogs: OtlpLogs['resourceLogs'][number]['scopeLogs'][number][] = [];
    rl.fields((f, w) => {
      if (f === 1) { expectWire(f, w, WIRE.len); resource = decodeResource(rl.message()); return true; }
      if (f !== 2) return false;
      expectWire(f, w, WIRE.len);
      const sl = rl.message();
      let scope = '';
      const logRecords: OtlpLogRecord[] = [];
      sl.fields((g, x) => {
        if (g === 1) { expectWire(g, x, WIRE.len); scope = decodeScopeName(sl.message()); return true; }
        if (g !== 2) return false;
        expectWire(g, x, WIRE.len);
        logRecords.push(decodeLogRecord(sl.message()));
        return true;
      });
      scopeLogs.push({ scope, logRecords });
      return true;
    });
    resourceLogs.push({ resource, scopeLogs });
    return true;
  });
  return { signal: 'logs', resourceLogs };
}

function decodeLogRecord(r: WireReader): OtlpLogRecord {
  let timeUnixNano = '0';
  let observedTimeUnixNano = '0';
  let severityNumber = 0;
  let severityText = '';
  let body: AnyValue | undefined;
  const attributes: (readonly [string, AnyValue])[] = [];
  let eventName = '';
  r.fields((f, w) => {
    switch (f) {
      case 1: expectWire(f, w, WIRE.fixed64); timeUnixNano = r.fixed64().toString(); return true;
      case 11: expectWire(f, w, WIRE.fixed64); observedTimeUnixNano = r.fixed64().toString(); return true;
      case 2: expectWire(f, w, WIRE.varint); severityNumber = r.varint(); return true;
      case 3: expectWire(f, w, WIRE.len); severityText = r.string(); return true;
      case 5: expectWire(f, w, WIRE.len); body = decodeAnyValue(r.message(), 0); return true;
      case 6: expectWire(f, w, WIRE.len); attributes.push(decodeKeyValue(r.message(), 0)); return true;
      case 12: expectWire(f, w, WIRE.len); eventName = r.string(); return true;
      default: return false;
    }
  });
  return { timeUnixNano, observedTimeUnixNano, severityNumber, severityText, body, attributes, eventName };
}

function decodeMetrics(r: WireReader): OtlpMetrics {
  const resourceMetrics: OtlpMetrics['resourceMetrics'][number][] = [];
  r.fields((field, wire) => {
    if (field !== 1) return false;
    expectWire(field, wire, WIRE.len);
    const rm = r.message();
    let resource: Attributes = [];
    const scopeMetrics: OtlpMetrics['resourceMetrics'][number]['scopeMetrics'][number][] = [];
    rm.fields((f, w) => {
      if (f === 1) { expectWire(f, w, WIRE.len); resource = decodeResource(rm.message()); return true; }
      if (f !== 2) return false;
      expectWire(f, w, WIRE.len);
      const sm = rm.message();
      let scope = '';
      const metrics: OtlpMetric[] = [];
      sm.fields((g, x) => {
        if (g === 1) { expectWire(g, x, WIRE.len); scope = decodeScopeName(sm.message()); return true; }
        if (g !== 2) return false;
        expectWire(g, x, WIRE.len);
        metrics.push(decodeMetric(sm.message()));
        return true;
      });
      scopeMetrics.push({ scope, metrics });
      return true;
    });
    resourceMetrics.push({ resource, scopeMetrics });
    return true;
  });
  return { signal: 'metrics', resourceMetrics };
}

/** Metric data fields: 5 gauge, 7 sum (number points in 1); 9, 10, 11 only have their points counted. */
const OTHER_TYPES: Readonly<Record<number, MetricType>> = { 9: 'histogram', 10: 'exponentialHistogram', 11: 'summary' };

function decodeMetric(r: WireReader): OtlpMetric {
  let name = '';
  let unit = '';
  let type: MetricType = 'empty';
  const dataPoints: OtlpNumberPoint[] = [];
  let otherPoints = 0;
  r.fields((f, w) => {
    if (f === 1) { expectWire(f, w, WIRE.len); name = r.string(); return true; }
    if (f === 3) { expectWire(f, w, WIRE.len); unit = r.string(); return true; }
    if (f === 5 || f === 7) {
      expectWire(f, w, WIRE.len);
      type = f === 5 ? 'gauge' : 'sum';
      const data = r.message();
      data.fields((g, x) => {
        if (g !== 1) return false;
        expectWire(g, x, WIRE.len);
        dataPoints.push(decodeNumberPoint(data.message()));
        return true;
      });
      return true;
    }
    const other = OTHER_TYPES[f];
    if (other === undefined) return false;
    expectWire(f, w, WIRE.len);
    type = other;
    const data = r.message();
    data.fields((g) => {
      if (g === 1) otherPoints++;
      return false;
    });
    return true;
  });
  return { name, unit, type, dataPoints, otherPoints };
}

function decodeNumberPoint(r: WireReader): OtlpNumberPoint {
  const attributes: (readonly [string, AnyValue])[] = [];
  let timeUnixNano = '0';
  let value: number | undefined;
  r.fields((f, w) => {
    switch (f) {
      case 7: expectWire(f, w, WIRE.len); attributes.push(decodeKeyValue(r.message(), 0)); return true;
      case 3: expectWire(f, w, WIRE.fixed64); timeUnixNano = r.fixed64().toString(); return true;
      case 4: expectWire(f, w, WIRE.fixed64); value = r.double(); return true;
      case 6: expectWire(f, w, WIRE.fixed64); value = Number(r.sfixed64()); return true;
      default: return false;
    }
  });
  return { attributes, timeUnixNano, value };
}

function decodeTraces(r: WireReader): OtlpTraces {
  let spans = 0;
  r.fields((field, wire) => {
    if (field !== 1) return false;
    expectWire(field, wire, WIRE.len);
    const rs = r.message();
    rs.fields((f, w) => {
      if (f !== 2) return false;
      expectWire(f, w, WIRE.len);
      const ss = rs.message();
      ss.fields((g) => {
        if (g === 2) spans++;
        return false;
      });
      return true;
    });
    return true;
  });
  return { signal: 'traces', spans };
}

/** Resource{1 repeated KeyValue attributes}. */
function decodeResource(r: WireReader): Attributes {
  const attrs: (readonly [string, AnyValue])[] = [];
  r.fields((f, w) => {
    if (f !== 1) return false;
    expectWire(f, w, WIRE.len);
    attrs.push(decodeKeyValue(r.message(), 0));
    return true;
  });
  return attrs;
}

/** InstrumentationScope{1 name}. */
function decodeScopeName(r: WireReader): string {
  let name = '';
  r.fields((f, w) => {
    if (f !== 1) return false;
    expectWire(f, w, WIRE.len);
    name = r.string();
    return true;
  });
  return name;
}

/** KeyValue{1 key, 2 AnyValue value}. */
function decodeKeyValue(r: WireReader, depth: number): readonly [string, AnyValue] {
  let key = '';
  let value: AnyValue = null;
  r.fields((f, w) => {
    if (f === 1) { expectWire(f, w, WIRE.len); key = r.string(); return true; }
    if (f === 2) { expectWire(f, w, WIRE.len); value = decodeAnyValue(r.message(), depth); return true; }
    return false;
  });
  return [key, value];
}

/** AnyValue{oneof 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue{1 values}, 6 KeyValueList{1 values}, 7 bytes}. */
function decodeAnyValue(r: WireReader, depth: number): AnyValue {
  let value: AnyValue = null;
  r.fields((f, w) => {
    switch (f) {
      case 1: expectWire(f, w, WIRE.len); value = r.string(); return true;
      case 2: expectWire(f, w, WIRE.varint); value = r.varint() !== 0; return true;
      case 3: expectWire(f, w, WIRE.varint); value = int64Value(r.int64()); return true;
      case 4: expectWire(f, w, WIRE.fixed64); value = r.double(); return true;
      case 7: expectWire(f, w, WIRE.len); value = Buffer.from(r.bytes()).toString('base64'); return true;
      case 5:
      case 6: {
        expectWire(f, w, WIRE.len);
        const inner = r.message();
        // Too deep: skipped whole (its bytes are still bounds-checked by the skip), value null.
        if (depth >= MAX_VALUE_DEPTH) { value = null; return true; }
        const items: AnyValue[] = [];
        const pairs: (readonly [string, AnyValue])[] = [];
        inner.fields((g, x) => {
          if (g !== 1) return false;
          expectWire(g, x, WIRE.len);
          if (f === 5) items.push(decodeAnyValue(inner.message(), depth + 1));
          else pairs.push(decodeKeyValue(inner.message(), depth + 1));
          return true;
        });
        value = f === 5 ? items : { kvlist: pairs };
        return true;
      }
      default: return false;
    }
  });
  return value;
}

export { WireError };
