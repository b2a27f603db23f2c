import type { DrainEvent } from '../ingest/DrainEvent.js';
import { timestampMs } from '../ingest/timestampMs.js';
import { SHAPES, isFirDyno } from '../rules/shapes.js';
import type { LifecycleEvent, LifecycleKind, MemorySample } from './DynoRecord.js';

/**
 * The Heroku lines the dyno observer reads (texts checked against the drain-protocol notes and
 * the captured samples; fixtures in test/fixtures/dyno-lines.txt). Only APP-NAME `heroku` with a
 * dyno PROCID is trusted for runtime lines, and `app[api]` for releases: an app can print any of
 * these texts on its own output, but cannot send them under `heroku`.
 */
const SOURCE = 'source=';
const SOURCE_BYTES = Buffer.from(SOURCE);
const MEMORY = 'sample#memory_total=';
const MEMORY_BYTES = Buffer.from(MEMORY);
const R15 = 'Error R15';
const PREFIXES: ReadonlyArray<readonly [string, Buffer]> = [
  'Starting process with command', 'State changed from ', 'Process exited', 'Cycling', 'Restarting', R15,
].map((p) => [p, Buffer.from(p)] as const);
const RELEASE = 'Release v';
const RELEASE_BYTES = Buffer.from(RELEASE);

function startsWith(e: DrainEvent, text: string, bytes: Buffer): boolean {
  return e.messageStartsWith ? e.messageStartsWith(bytes) : e.message.startsWith(text);
}

/** The prefilter: header fields and byte prefixes only, the message is not decoded. */
export function wantsDynoLine(e: DrainEvent): boolean {
  const source = e.source;
  if (source === 'heroku') {
    const p = e.process;
    if (p === 'router' || p === 'logplex' || !SHAPES.dyno.test(p)) return false;
    // Runtime metrics are most of what is wanted; load averages share the prefix but not this.
    if (startsWith(e, SOURCE, SOURCE_BYTES)) return e.messageIncludes ? e.messageIncludes(MEMORY_BYTES) : e.message.includes(MEMORY);
    for (const [text, bytes] of PREFIXES) if (startsWith(e, text, bytes)) return true;
    return false;
  }
  return source === 'app' && e.process === 'api' && startsWith(e, RELEASE, RELEASE_BYTES);
}

const INSTANCE = /^heroku\.\d{1,20}\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const MB = /^(\d{1,7}(?:\.\d{1,6})?)MB$/;
const RELEASE_LINE = /^Release (v\d{1,9}) created by /;
const EXIT = /^Process exited(?: with status (\d{1,3}))?$/;
const STATE = /^State changed from ([a-z]{1,20}) to ([a-z]{1,20})$/;

/**
 * The value of `key=` in a runtime-metrics line: these lines come from the platform, unquoted,
 * with each key once, so the value runs to the next space. Cheaper than a full logfmt parse of the
 * nine fields for the four read (and indexOf, not lastIndexOf: V8 scans backwards slowly).
 */
function field(text: string, key: string): string | undefined {
  let i = text.indexOf(key);
  while (i > 0 && text.charCodeAt(i - 1) !== 32) i = text.indexOf(key, i + 1);
  if (i < 0) return undefined;
  const from = i + key.length;
  const to = text.indexOf(' ', from);
  return text.slice(from, to === -1 ? undefined : to);
}

function megabytes(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = MB.exec(v);
  return m ? Number(m[1]) : undefined;
}

/**
 * The instance a runtime-metrics line is from. Cedar: the uuid of `dyno=heroku.<app id>.<uuid>`.
 * Fir: the dyno name itself, which the OTLP receiver writes as both `source=` and `dyno=`
 * (src/ingest/otlp/firEvents.ts): a Fir name is unique and a restarted dyno gets a new one, so
 * the name is the instance (and a new name is a new instance, started at its first sample).
 */
function instanceOfSample(dyno: string, dynoField: string): string | undefined {
  const id = INSTANCE.exec(dynoField);
  if (id) return id[1]!;
  return dynoField === dyno && isFirDyno(dyno) ? dyno : undefined;
}

export type DynoLine = { readonly sample: MemorySample } | { readonly event: LifecycleEvent } | undefined;

/** A wanted line read: a memory sample, a lifecycle event, or nothing (not one of ours after all). */
export function readDynoLine(e: DrainEvent): DynoLine {
  const at = timestampMs(e.timestamp);
  if (!Number.isFinite(at)) return undefined;
  const text = e.message;
  const ev = (kind: LifecycleKind, detail = ''): DynoLine => ({ event: { kind, dyno: e.source === 'heroku' ? e.process : '', at, detail } });
  if (e.source !== 'heroku') {
    const r = RELEASE_LINE.exec(text);
    return r ? ev('release', r[1]) : undefined;
  }
  if (text.startsWith(SOURCE)) {
    // `source=` is the stable dyno name and must be the PROCID it came under.
    if (field(text, SOURCE) !== e.process) return undefined;
    const instance = instanceOfSample(e.process, field(text, 'dyno=') ?? '');
    const valueMb = megabytes(field(text, MEMORY));
    if (instance === undefined || valueMb === undefined) return undefined;
    return { sample: { dyno: e.process, instance, at, valueMb, limitMb: megabytes(field(text, 'sample#memory_quota=')), swapMb: megabytes(field(text, 'sample#memory_swap=')) } };
  }
  // Cedar logs R15 when it kills a dyno far over quota; Fir restarts at 100 % (Dev Center, "Dyno
  // memory behavior"), and if its logs say so with the same code, it is kept the same way.
  if (text.startsWith(R15)) return ev('quota-restart', 'R15');
  if (text.startsWith('Starting process with command')) return ev('start');
  if (text === 'Cycling') return ev('cycling');
  if (text === 'Restarting') return ev('restart');
  const x = EXIT.exec(text);
  if (x) return ev('exit', x[1] ?? '');
  const s = STATE.exec(text);
  if (s) {
    if (s[2] === 'crashed') return ev('crash', s[1]);
    if (s[1] === 'starting' && s[2] === 'up') return ev('up');
  }
  return undefined;
}
