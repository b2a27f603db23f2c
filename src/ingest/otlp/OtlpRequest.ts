/**
 * An OTLP export request as mallet reads it, whichever encoding it came in (protobuf or JSON):
 * only the fields the Fir mapping and the capture need (opentelemetry-proto `logs/v1`,
 * `metrics/v1`, `common/v1`; field numbers in ../shared/docs/heroku-fir-telemetry.md §2).
 * Plain data, so a capture writes it as JSON as is. 64-bit times stay decimal strings (nanoseconds
 * do not fit a double); an int64 attribute is a number when exact, else its decimal string.
 */
export type AnyValue = string | number | boolean | null | readonly AnyValue[] | KeyValueList;
export interface KeyValueList { readonly kvlist: Attributes }
/** Key-value pairs in arrival order; a key may repeat (the last one wins when looked up). */
export type Attributes = readonly (readonly [string, AnyValue])[];

export interface OtlpLogRecord {
  readonly timeUnixNano: string;
  readonly observedTimeUnixNano: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: AnyValue | undefined;
  readonly attributes: Attributes;
  readonly eventName: string;
}

export interface OtlpLogs {
  readonly signal: 'logs';
  readonly resourceLogs: readonly {
    readonly resource: Attributes;
    readonly scopeLogs: readonly { readonly scope: string; readonly logRecords: readonly OtlpLogRecord[] }[];
  }[];
}

export interface OtlpNumberPoint {
  readonly attributes: Attributes;
  readonly timeUnixNano: string;
  /** undefined: the point had neither as_double nor as_int. */
  readonly value: number | undefined;
}

export type MetricType = 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'summary' | 'empty';

export interface OtlpMetric {
  readonly name: string;
  readonly unit: string;
  readonly type: MetricType;
  /** Gauge and sum points; the other types' points are only counted (`otherPoints`). */
  readonly dataPoints: readonly OtlpNumberPoint[];
  readonly otherPoints: number;
}

export interface OtlpMetrics {
  readonly signal: 'metrics';
  readonly resourceMetrics: readonly {
    readonly resource: Attributes;
    readonly scopeMetrics: readonly { readonly scope: string; readonly metrics: readonly OtlpMetric[] }[];
  }[];
}

/** Traces are accepted and dropped (Fir's router exports them): only counted. */
export interface OtlpTraces {
  readonly signal: 'traces';
  readonly spans: number;
}

export type OtlpRequest = OtlpLogs | OtlpMetrics | OtlpTraces;
export type OtlpSignal = OtlpRequest['signal'];
export const OTLP_SIGNALS: readonly OtlpSignal[] = ['logs', 'metrics', 'traces'];

/** AnyValue nesting kept (arrays and kvlists in kvlists); deeper values become null, so no body recurses without bound. */
export const MAX_VALUE_DEPTH = 8;

/** The last value of `key`, or undefined. */
export function attribute(attrs: Attributes, key: string): AnyValue | undefined {
  for (let i = attrs.length - 1; i >= 0; i--) if (attrs[i]![0] === key) return attrs[i]![1];
  return undefined;
}

/** A scalar as text (what a dyno name or service name attribute holds); structures are not names. */
export function scalarText(v: AnyValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** An int64 as a number when exact, else its decimal string. */
export function int64Value(n: bigint): number | string {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}
