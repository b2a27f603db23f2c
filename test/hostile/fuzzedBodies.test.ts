import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix } from '../support/redis.js';
import { basic } from '../support/drainClient.js';
import { startHostileService, type HostileService } from './hostileService.js';

/**
 * Fuzzed bodies over real HTTP (≥ 10 000 a run): valid frames, then anything — random bytes,
 * LEN fields huge, negative, non-numeric, one too high or low — never crash the service, never get
 * a 5xx (a body within the size limit is 204: logplex drops a 4xx batch for good), and every
 * valid frame before the first broken byte is delivered as sent.
 */
const RUNS = Number(process.env.MALLET_FUZZ_RUNS ?? 10_000);
let s: HostileService;
beforeAll(async () => { s = await startHostileService(); });
afterAll(async () => { await s.close(); await cleanupPrefix(s.redis, s.prefix); s.redis.disconnect(); });

type Segment = { kind: 'frame'; source: string; proc: string; text: string } | { kind: 'junk'; bytes: Uint8Array };

const frameBytes = (source: string, proc: string, text: string) => {
  const msg = Buffer.from(`<134>1 2026-12-01T00:00:00.000000+00:00 host ${source} ${proc} - ${text}\n`);
  return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
};

const validFrame = fc.record({
  kind: fc.constant('frame' as const),
  source: fc.constantFrom('heroku', 'app'),
  proc: fc.oneof(fc.constantFrom('web.1', 'worker.2', 'router', 'web.1/../x', 'web.1%2F..', 'api'), fc.stringMatching(/^[!-~]{1,48}$/)),
  text: fc.oneof(
    fc.constantFrom('Error R14 (Memory quota exceeded)', 'Error R15 (Memory quota vastly exceeded)', 'at=error code=H12 desc="Request timeout" service=30000ms', 'source=web.1 sample#memory_total=600.00MB sample#memory_quota=512.00MB'),
    fc.string({ unit: 'grapheme', maxLength: 300 }),
  ),
});

const junk = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => ({ kind: 'junk' as const, bytes })),
  fc.constantFrom('99999999999999999999 x', '-5 <134>1 x', 'abc <134>1 x', '0 ', ' 12 ', '1e3 x', '0x10 abcdefghijklmnop', '\n\n', '9 <134>1')
    .map((t) => ({ kind: 'junk' as const, bytes: Buffer.from(t) })),
  // A well-formed frame whose LEN is one off.
  fc.tuple(validFrame, fc.constantFrom(-1, 1)).map(([f, d]) => {
    const b = frameBytes(f.source, f.proc, f.text);
    const sp = b.indexOf(0x20);
    return { kind: 'junk' as const, bytes: Buffer.concat([Buffer.from(String(Number(b.subarray(0, sp).toString()) + d)), b.subarray(sp)]) };
  }),
);

const body = fc.tuple(fc.array(validFrame, { maxLength: 8 }), fc.array(fc.oneof(validFrame, junk), { maxLength: 8 }));

describe(`${RUNS} fuzzed bodies`, () => {
  it('are answered 204 and keep every valid frame before the first broken one', async () => {
    const samples = fc.sample(body, { numRuns: RUNS, seed: Number(process.env.MALLET_FUZZ_SEED ?? 20261201) });
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < samples.length) {
        const n = next++;
        const [prefix, rest] = samples[n]!;
        const segments: Segment[] = [...prefix, ...rest];
        const bytes = Buffer.concat(segments.map((g) => (g.kind === 'frame' ? frameBytes(g.source, g.proc, g.text) : Buffer.from(g.bytes))));
        const frameId = `FUZZ${n}`;
        const res = await fetch(`${s.url}/drains/fuzz-app`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/logplex-1', Authorization: basic(s.password), 'Logplex-Frame-Id': frameId, 'Logplex-Msg-Count': String(segments.length) },
          body: new Uint8Array(bytes),
        });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status !== 204) { problems.push(`#${n}: ${res.status}: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`); continue; }
        const got = s.events.get(frameId) ?? [];
        for (let i = 0; i < prefix.length; i++) {
          const want = prefix[i]!;
          const e = got[i];
          if (!e || e.message !== want.text || e.process !== want.proc || e.source !== want.source) {
            problems.push(`#${n}: frame ${i} ${JSON.stringify(want)} delivered as ${JSON.stringify(e && { source: e.source, process: e.process, message: e.message })}`);
            break;
          }
        }
        s.events.delete(frameId);
      }
    }));
    expect(problems.slice(0, 5)).toEqual([]);
    expect(Object.fromEntries(statuses)).toEqual({ 204: RUNS });
    // Still serving after all of it.
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  }, 600_000);
});
