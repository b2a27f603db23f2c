/**
 * The load generator of bench/drain.bench.ts, in its own process so it does not share the event
 * loop of the server it measures. Posts corpus bodies (a fresh Logplex-Frame-Id each) for a
 * duration, optionally at a fixed overall rate, and prints one JSON line with the result.
 *
 *   node --import tsx bench/support/drainLoad.ts URL DURATION_S [RATE]
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { ensureCorpus } from '../corpus.js';

const [url, durationArg, rateArg] = process.argv.slice(2);
const password = process.env.BENCH_DRAIN_PASSWORD ?? '';
const corpus = await ensureCorpus(100_000);
const bytes = readFileSync(corpus.file);
const bodies = corpus.index.map((b) => ({ body: bytes.subarray(b.offset, b.offset + b.length), count: b.msgCount }));
const auth = 'Basic ' + Buffer.from(`mallet:${password}`).toString('base64');
const run = `${process.pid.toString(16)}${Date.now().toString(16)}`.toUpperCase();
let n = 0;

const result = await autocannon({
  url: url!,
  connections: Number(process.env.BENCH_CONNECTIONS ?? 8),
  duration: Number(durationArg),
  ...(rateArg ? { overallRate: Number(rateArg) } : {}),
  requests: [{
    method: 'POST',
    path: '/drains/bench-app',
    setupRequest: (req) => {
      const b = bodies[n++ % bodies.length]!;
      // A fresh frame id per request: a repeated one would be skipped as a logplex retry.
      return { ...req, body: b.body as unknown as string, headers: {
        'content-type': 'application/logplex-1', authorization: auth,
        'logplex-msg-count': String(b.count), 'logplex-frame-id': `${run}${n.toString(16).toUpperCase().padStart(12, '0')}`,
        'logplex-drain-token': 'd.00000000-0000-4000-8000-000000000000',
      } };
    },
  }],
});
const lines = bodies.reduce((a, b) => a + b.count, 0) / bodies.length;
console.log(JSON.stringify({ rps: result.requests.average, non2xx: result.non2xx, errors: result.errors, linesPerBody: lines }));
