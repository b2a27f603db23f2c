import type { SyslogMessage } from '../SyslogMessage.js';
import { MAX_MESSAGE_BYTES } from '../SyslogMessage.js';
import { truncateUtf8 } from '../../truncateUtf8.js';
import { fallbackQuotaMb, type FirMapping } from '../../rules/FirMapping.js';
import { SHAPES, processTypeOf } from '../../rules/shapes.js';
import type { ProcessMatcher } from '../../rules/glob.js';
import { attribute, scalarText, type AnyValue, type Attributes, type OtlpLogs, type OtlpMetrics } from './OtlpRequest.js';

/**
 * OTLP records as the same messages a logplex drain yields, so rules, thresholds, history,
 * explain and silences treat a Fir app like a Cedar one:
 *
 * - a log record → APP-NAME `heroku` when its service (`fir.service_attribute`) is one of
 *   `fir.platform_services` (PROCID: the mapped name, e.g. `router`), else `app` with the dyno
 *   name as PROCID (`fir.dyno_attributes`, the record's own attributes before the resource's);
 *   the text is the string body (a key-value body is written as logfmt, so `fields` rules read it);
 * - memory and CPU points of one dyno at one time → one runtime-metrics line like Cedar's
 *   `log-runtime-metrics` (`source=DYNO dyno=DYNO sample#memory_total=…MB sample#memory_quota=…MB`),
 *   APP-NAME `heroku`, PROCID the dyno, so the Cedar memory rules' `fields` conditions apply
 *   and the dyno observer keeps it as a sample of instance DYNO (a Fir name is unique). Without a
 *   memory-limit point, `sample#memory_quota` is `fir.memory_quota`'s for the process type, or absent.
 */
export interface FirMessages {
  readonly messages: SyslogMessage[];
  /** Items that could not be used as sent (OTLP `partial_success`): points without a value. */
  readonly rejected: number;
  /** Valid items no rule can use (other metrics, histograms, points of no dyno). */
  readonly unmapped: number;
}

/** RFC 5424 NILVALUE, the PROCID of a record that names no dyno. */
const NIL = '-';

export class OtlpMessage implements SyslogMessage {
  readonly hostname = NIL;
  readonly msgId = NIL;
  readonly structuredData = undefined;
  constructor(
    readonly pri: number,
    readonly timestamp: string,
    readonly appName: string,
    readonly procId: string,
    readonly message: string,
  ) {}
}

export function logMessages(req: OtlpLogs, fir: FirMapping, receivedAt: number): FirMessages {
  const messages: SyslogMessage[] = [];
  for (const rl of req.resourceLogs) {
    for (const sl of rl.scopeLogs) {
      for (const rec of sl.logRecords) {
        const service = scalarText(firstOf([fir.serviceAttribute], rec.attributes, rl.resource));
        const platform = service === undefined ? undefined : fir.platformServices.get(service);
        const dyno = dynoOf(fir, rec.attributes, rl.resource);
        const procId = platform ?? dyno ?? NIL;
        const time = timestampOf(rec.timeUnixNano, rec.observedTimeUnixNano, receivedAt);
        messages.push(new OtlpMessage(priOf(rec.severityNumber), time, platform !== undefined ? 'heroku' : 'app', procId, bodyText(rec.body)));
      }
    }
  }
  return { messages, rejected: 0, unmapped: 0 };
}

type Role = 'memory_total' | 'memory_quota' | 'cpu';

export function metricMessages(req: OtlpMetrics, fir: FirMapping, receivedAt: number): FirMessages {
  let rejected = 0;
  let unmapped = 0;
  // Per dyno and time, in arrival order: the samples of one line.
  const samples = new Map<string, { dyno: string; time: string; values: Map<Role, string> }>();
  for (const rm of req.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        const role = roleOf(fir, m.name);
        const scale = role === 'cpu' ? 1 : memoryScale(m.unit);
        if (role === undefined || scale === undefined) {
          unmapped += m.dataPoints.length + m.otherPoints;
          continue;
        }
        unmapped += m.otherPoints;
        for (const p of m.dataPoints) {
          if (p.value === undefined || !Number.isFinite(p.value)) { rejected++; continue; }
          const dyno = dynoOf(fir, p.attributes, rm.resource);
          if (dyno === undefined) { unmapped++; continue; }
          const time = timestampOf(p.timeUnixNano, '0', receivedAt);
          const key = `${dyno}\n${time}`;
          let s = samples.get(key);
          if (!s) samples.set(key, (s = { dyno, time, values: new Map() }));
          s.values.set(role, role === 'cpu' ? formatNumber(p.value) : `${(p.value * scale).toFixed(2)}MB`);
        }
      }
    }
  }
  const messages: SyslogMessage[] = [];
  for (const s of samples.values()) {
    if (s.values.has('memory_total') && !s.values.has('memory_quota')) {
      // No limit metric with this sample: the configured limit of its process type, if any.
      const q = fallbackQuotaMb(fir, processTypeOf(s.dyno));
      if (q !== undefined) s.values.set('memory_quota', `${q.toFixed(2)}MB`);
    }
    let text = `source=${s.dyno} dyno=${s.dyno}`;
    for (const role of ['memory_total', 'memory_quota', 'cpu'] as const) {
      const v = s.values.get(role);
      if (v !== undefined) text += ` sample#${role}=${v}`;
    }
    messages.push(new OtlpMessage(PRI_INFO, s.time, 'heroku', s.dyno, text));
  }
  return { messages, rejected, unmapped };
}

function roleOf(fir: FirMapping, name: string): Role | undefined {
  // Limit first: `*memory*limit*` must win over `*memory*usage*` for `memory.usage.limit`.
  if (anyMatch(fir.memoryLimit, name)) return 'memory_quota';
  if (anyMatch(fir.memoryUsage, name)) return 'memory_total';
  if (anyMatch(fir.cpu, name)) return 'cpu';
  return undefined;
}

function anyMatch(globs: readonly ProcessMatcher[], name: string): boolean {
  for (const g of globs) if (g(name)) return true;
  return false;
}

/** UCUM byte units (OTel semconv writes `By`) → MB as Heroku's runtime metrics write them (MiB). */
const MEMORY_UNITS: Readonly<Record<string, number>> = {
  '': 1 / 1048576, By: 1 / 1048576, KiBy: 1 / 1024, MiBy: 1, GiBy: 1024, kBy: 1000 / 1048576, MBy: 1e6 / 1048576, GBy: 1e9 / 1048576,
};

function memoryScale(unit: string): number | undefined {
  return Object.hasOwn(MEMORY_UNITS, unit) ? MEMORY_UNITS[unit] : undefined;
}

const NAME_SHAPE = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * A dyno name: the first attribute whose value has a dyno's shape (`web-12a34b56d-e78f9`,
 * `web.1`), else the first with a name's shape (no spaces, no `=`, bounded). Dyno-shaped first
 * because OTel's Heroku conventions put HEROKU_DYNO_ID (a uuid, not the name) in
 * `service.instance.id`, which would otherwise win over `host.name` holding the real name.
 */
function dynoOf(fir: FirMapping, own: Attributes, resource: Attributes): string | undefined {
  let named: string | undefined;
  for (const k of fir.dynoAttributes) {
    for (const attrs of [own, resource]) {
      const v = scalarText(attribute(attrs, k));
      if (v === undefined || !NAME_SHAPE.test(v)) continue;
      if (SHAPES.dyno.test(v)) return v;
      named ??= v;
    }
  }
  return named;
}

function firstOf(keys: readonly string[], own: Attributes, resource: Attributes): AnyValue | undefined {
  for (const k of keys) {
    const v = attribute(own, k) ?? attribute(resource, k);
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

/** A body as the line's text: strings as is (one trailing LF dropped, like logplex's), the rest as logfmt or JSON. */
function bodyText(body: AnyValue | undefined): string {
  let text: string;
  if (body === undefined || body === null) text = '';
  else if (typeof body === 'string') text = body.endsWith('\n') ? body.slice(0, -1) : body;
  else if (typeof body === 'object' && 'kvlist' in body) text = body.kvlist.map(([k, v]) => `${logfmtKey(k)}=${logfmtValue(v)}`).join(' ');
  else text = typeof body === 'object' ? JSON.stringify(body) : String(body);
  return truncateUtf8(text, MAX_MESSAGE_BYTES);
}

function logfmtKey(k: string): string {
  return k.replace(/[\s="]/g, '_') || '_';
}

function logfmtValue(v: AnyValue): string {
  const s = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return /^[^\s="\\]*$/.test(s) ? s : `"${s.replace(/[\\"]/g, (c) => '\\' + c).replace(/[\r\n]/g, ' ')}"`;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(4).replace(/0+$/, '');
}

/** The record's time (else its observed time, else arrival) as RFC 3339 with microseconds, like logplex's. */
function timestampOf(timeUnixNano: string, observedUnixNano: string, receivedAt: number): string {
  let ns = BigInt(timeUnixNano);
  if (ns === 0n) ns = BigInt(observedUnixNano);
  let micros = ns === 0n ? BigInt(receivedAt) * 1000n : ns / 1000n;
  // Beyond what Date can show (year 275760): arrival time instead.
  if (micros > 8_640_000_000_000_000_000n) micros = BigInt(receivedAt) * 1000n;
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 19)}.${(micros % 1_000_000n).toString().padStart(6, '0')}+00:00`;
}

/** Syslog PRI (facility user) from the OTLP severity number: 1–8 debug/trace, 9 info, 13 warn, 17 error, 21 fatal. */
const PRI_INFO = 8 + 6;
function priOf(severityNumber: number): number {
  if (severityNumber >= 21) return 8 + 2;
  if (severityNumber >= 17) return 8 + 3;
  if (severityNumber >= 13) return 8 + 4;
  if (severityNumber >= 9 || severityNumber === 0) return PRI_INFO;
  return 8 + 7;
}
