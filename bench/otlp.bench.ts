/**
 * OTLP decode throughput: one log export of 512 records (the SDK's default batch) as the
 * OpenTelemetry JS SDK's own exporters send it, decoded and mapped to drain messages, beside the
 * cheapest thing any receiver must do in the same run:
 *
 *   JSON.parse         JSON.parse of the JSON body alone (baseline: no receiver does less)
 *   mallet json        parseOtlpJson + decodeJson + logMessages
 *   mallet protobuf    decodeProtobuf (the hand-written wire reader) + logMessages
 *
 * Median records/s of several rounds, interleaved, with CPU time per record.
 *   node --import tsx bench/otlp.bench.ts [--records 512] [--rounds 7]
 */
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { decodeProtobuf } from '../src/ingest/otlp/decodeProtobuf.js';
import { decodeJson, parseOtlpJson } from '../src/ingest/otlp/decodeJson.js';
import { logMessages } from '../src/ingest/otlp/firEvents.js';
import { compileFirMapping } from '../src/rules/FirMapping.js';
import type { OtlpLogs } from '../src/ingest/otlp/OtlpRequest.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const RECORDS = arg('records', 512);
const ROUNDS = arg('rounds', 7);

/** The bodies the SDK's exporters post, caught by a local server. */
async function exportBody(encoding: 'protobuf' | 'json'): Promise<Buffer> {
  let body: Buffer | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => { body = Buffer.concat(chunks); res.writeHead(200, { 'content-type': req.headers['content-type'] ?? '' }).end(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  // One export of RECORDS records: a batch the size of the SDK's default, so one request.
  const { BatchLogRecordProcessor, LoggerProvider } = await import('@opentelemetry/sdk-logs');
  const { OTLPLogExporter: Proto } = await import('@opentelemetry/exporter-logs-otlp-proto');
  const { OTLPLogExporter: Json } = await import('@opentelemetry/exporter-logs-otlp-http');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const url = `http://127.0.0.1:${port}/v1/logs`;
  const exporter = encoding === 'json' ? new Json({ url }) : new Proto({ url });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'acme-shop', 'heroku.dyno.name': 'web-5d9c8b7f6-q2x4z' }),
    processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: RECORDS, maxQueueSize: RECORDS * 2 })],
  });
  const logger = provider.getLogger('bench');
  for (let i = 0; i < RECORDS; i++) {
    logger.emit({ body: `at=info method=GET path="/orders/${i}" host=acme-shop.example.com request_id=${i.toString(16).padStart(8, '0')} status=200 bytes=${1000 + i} service=${i % 97}ms`, attributes: { 'http.route': '/orders/:id' } });
  }
  await provider.forceFlush();
  await provider.shutdown();
  server.close();
  if (!body) throw new Error('the exporter sent nothing');
  return body;
}

const proto = await exportBody('protobuf');
const json = await exportBody('json');
const fir = compileFirMapping(undefined, () => {});
const check = logMessages(decodeProtobuf('logs', proto) as OtlpLogs, fir, 0).messages;
if (check.length !== RECORDS) throw new Error(`decoded ${check.length} records, expected ${RECORDS}`);

const contenders: [string, () => number][] = [
  ['JSON.parse', () => (JSON.parse(json.toString('utf8')) as { resourceLogs: unknown[] }).resourceLogs.length],
  ['mallet json', () => logMessages(decodeJson('logs', parseOtlpJson(json)) as OtlpLogs, fir, 0).messages.length],
  ['mallet protobuf', () => logMessages(decodeProtobuf('logs', proto) as OtlpLogs, fir, 0).messages.length],
];

const results = new Map<string, { rate: number; cpuUs: number }[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of contenders) {
    const iterations = 200;
    globalThis.gc?.();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let sink = 0;
    for (let i = 0; i < iterations; i++) sink += run();
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    if (sink === 0) throw new Error('nothing decoded');
    const records = iterations * RECORDS;
    const list = results.get(name) ?? [];
    list.push({ rate: records / (ns / 1e9), cpuUs: (cpu.user + cpu.system) / records });
    results.set(name, list);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.get('JSON.parse')!.map((r) => r.rate));
console.log(`one export of ${RECORDS} log records: protobuf ${proto.length} B, JSON ${json.length} B; ${ROUNDS} rounds × 200 exports; ${cpus()[0]?.model ?? ''}\n`);
console.log('| contender | records/s (median) | CPU µs/record | vs JSON.parse |');
console.log('|---|---:|---:|---:|');
for (const [name] of contenders) {
  const rs = results.get(name)!;
  const rate = median(rs.map((r) => r.rate));
  console.log(`| ${name} | ${Math.round(rate).toLocaleString('en')} | ${median(rs.map((r) => r.cpuUs)).toFixed(2)} | ${(rate / base).toFixed(2)}× |`);
}
