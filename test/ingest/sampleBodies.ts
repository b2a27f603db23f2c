import { readFileSync, readdirSync } from 'node:fs';
import type { SyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { samplePath } from '../support/samples.js';

/** One vendored body with its sidecar (test/fixtures/samples/README.md, "Sidecar .json"). */
export interface SampleBody {
  name: string;
  bytes: Buffer;
  sidecar: {
    expected: Array<Record<string, unknown>>;
    recoverableWithResync?: Array<Record<string, unknown>>;
    errors?: Array<{ offset: number; kind: string }>;
    warnings?: Array<{ offset: number; kind: string }>;
  };
}

export function sampleBodies(dir: 'bodies' | 'bodies/malformed'): SampleBody[] {
  return readdirSync(samplePath(dir))
    .filter((f) => f.endsWith('.logplex'))
    .sort()
    .map((f) => ({
      name: `${dir}/${f}`,
      bytes: readFileSync(samplePath(dir, f)),
      sidecar: JSON.parse(readFileSync(samplePath(dir, f.replace(/\.logplex$/, '.json')), 'utf8')),
    }));
}

export function syslogStream(): { bytes: Buffer; expected: Array<Record<string, unknown>>; drainToken: string } {
  const side = JSON.parse(readFileSync(samplePath('bodies', 'syslog-stream.json'), 'utf8'));
  return { bytes: readFileSync(samplePath('bodies', 'syslog-stream.bin')), expected: side.expected, drainToken: side.drainToken };
}

/** The sidecar's shape of a message (syslog adds structuredData). */
export function fieldsOf(m: SyslogMessage, withSd = false): Record<string, unknown> {
  const f: Record<string, unknown> = {
    pri: m.pri, timestamp: m.timestamp, hostname: m.hostname, appName: m.appName, procId: m.procId, msgId: m.msgId,
  };
  if (withSd) f.structuredData = m.structuredData;
  f.message = m.message;
  return f;
}

/** Cuts bytes at random points (seeded by the caller's rng) into 1..maxPiece byte pieces. */
export function randomChunks(bytes: Buffer, rng: () => number, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rng() * maxPiece);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Small deterministic PRNG so a failing chunking can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}
