import { SeverityNumber } from '@opentelemetry/api-logs';
import type { ExportResult } from '@opentelemetry/core';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ValueType } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, MeterProvider, PeriodicExportingMetricReader, type MetricData, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/**
 * Fir telemetry as the OpenTelemetry JS SDK's own OTLP exporters send it: the wire bytes come
 * from an implementation nobody here wrote. Each helper reports the exporter's own results, so a
 * test sees what the sender saw (success, or the failed status).
 */
export interface SdkTarget {
  /** Full URL: `…/otlp/APP/v1/logs`, or the bare `…/otlp/APP`. */
  readonly url: string;
  readonly token: string;
  readonly encoding: 'protobuf' | 'json';
  readonly gzip?: boolean;
  /** Exporter timeout (ms), which also bounds its retries. */
  readonly timeoutMillis?: number;
}

export interface SentRecord {
  readonly body: string | Record<string, string>;
  readonly severity?: SeverityNumber;
  readonly attributes?: Record<string, string>;
}

export async function sendLogs(target: SdkTarget, resource: Record<string, string>, records: readonly SentRecord[]): Promise<ExportResult[]> {
  const config = exporterConfig(target);
  const inner: LogRecordExporter = target.encoding === 'json' ? new JsonLogExporter(config) : new ProtoLogExporter(config);
  const results: ExportResult[] = [];
  const exporter: LogRecordExporter = {
    export: (logs: ReadableLogRecord[], done: (r: ExportResult) => void) => inner.export(logs, (r) => { results.push(r); done(r); }),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
  const provider = new LoggerProvider({ resource: resourceFromAttributes(resource), processors: [new SimpleLogRecordProcessor({ exporter })] });
  const logger = provider.getLogger('fir-test');
  for (const r of records) {
    logger.emit({ body: r.body, severityNumber: r.severity ?? SeverityNumber.INFO, attributes: r.attributes ?? {} });
  }
  await provider.forceFlush();
  await provider.shutdown();
  return results;
}

/** A dyno's memory gauges; `sample()` exports the current values once (one collection, one request). */
export interface MemoryGauges {
  usageBytes: number;
  limitBytes: number | undefined;
  sample(): Promise<ExportResult>;
  close(): Promise<void>;
}

export function memoryGauges(
  target: SdkTarget, resource: Record<string, string>,
  names = { usage: 'dyno.memory.usage', limit: 'dyno.memory.limit' },
): MemoryGauges {
  const config = exporterConfig(target);
  const inner: PushMetricExporter = target.encoding === 'json' ? new JsonMetricExporter(config) : new ProtoMetricExporter(config);
  let last: ExportResult | undefined;
  const exporter: PushMetricExporter = {
    export: (m: ResourceMetrics, done: (r: ExportResult) => void) => inner.export(m, (r) => { last = r; done(r); }),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
    selectAggregationTemporality: inner.selectAggregationTemporality?.bind(inner),
  };
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, exportTimeoutMillis: target.timeoutMillis ?? 10_000 });
  const provider = new MeterProvider({ resource: resourceFromAttributes(resource), readers: [reader] });
  const meter = provider.getMeter('fir-test');
  const gauges: MemoryGauges = {
    usageBytes: 0,
    limitBytes: undefined,
    async sample() {
      last = undefined;
      await provider.forceFlush();
      if (!last) throw new Error('the reader exported nothing');
      return last;
    },
    close: () => provider.shutdown(),
  };
  meter.createObservableGauge(names.usage, { unit: 'By' }).addCallback((r) => r.observe(gauges.usageBytes));
  meter.createObservableGauge(names.limit, { unit: 'By' }).addCallback((r) => { if (gauges.limitBytes !== undefined) r.observe(gauges.limitBytes); });
  return gauges;
}

/** One memory sample of a series: its time (ms) and values. */
export interface SeriesPoint {
  readonly at: number;
  readonly usageBytes: number;
  readonly limitBytes?: number | undefined;
}

/**
 * A dyno's memory series in one export, at chosen times: the SDK's own exporter (serializer and
 * HTTP transport) sends data built as its reader would collect it, only with the points' times
 * set, so hours of samples take one request instead of hours of waiting. Returns the exporter's result.
 */
export function exportMemorySeries(
  target: SdkTarget, resource: Record<string, string>, points: readonly SeriesPoint[],
  names = { usage: 'dyno.memory.usage', limit: 'dyno.memory.limit' },
): Promise<ExportResult> {
  const config = exporterConfig(target);
  const exporter: PushMetricExporter = target.encoding === 'json' ? new JsonMetricExporter(config) : new ProtoMetricExporter(config);
  const hr = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
  const gauge = (name: string, values: Array<[number, number]>): MetricData => ({
    descriptor: { name, description: '', unit: 'By', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: values.map(([at, value]) => ({ startTime: hr(at), endTime: hr(at), attributes: {}, value })),
  });
  const metrics = [gauge(names.usage, points.map((p) => [p.at, p.usageBytes]))];
  const limits = points.flatMap((p): Array<[number, number]> => (p.limitBytes === undefined ? [] : [[p.at, p.limitBytes]]));
  if (limits.length > 0) metrics.push(gauge(names.limit, limits));
  const data: ResourceMetrics = { resource: resourceFromAttributes(resource), scopeMetrics: [{ scope: { name: 'fir-test' }, metrics }] };
  return new Promise<ExportResult>((resolve) => exporter.export(data, resolve)).finally(() => exporter.shutdown());
}

function exporterConfig(target: SdkTarget) {
  return {
    url: target.url,
    headers: { Authorization: `Bearer ${target.token}` },
    timeoutMillis: target.timeoutMillis ?? 10_000,
    ...(target.gzip ? { compression: 'gzip' as never } : {}),
  };
}
