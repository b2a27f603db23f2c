/**
 * Parser throughput over one generated corpus, mallet beside its baselines in the same run:
 *
 *   bare walk     read LEN, skip LEN bytes: the ceiling for any octet-counting reader
 *   mallet hdr    parseLogplexBody + PROCID, APP-NAME, TIMESTAMP of every line (what rules read)
 *   mallet text   the same plus the decoded text of every line
 *   glossy        frames split by LEN, then glossy.Parse.parse on each message string
 *   naive regex   frames split by LEN, then one RFC 5424-ish regex per message string
 *
 * Median lines/s of several rounds, rounds interleaved so drift hits every contender alike.
 *   node --import tsx bench/parser.bench.ts [--lines 200000] [--rounds 7]
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import glossy from 'glossy';
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import { ensureCorpus } from './corpus.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 200_000);
const ROUNDS = arg('rounds', 7);

const corpus = await ensureCorpus(LINES);
const data = readFileSync(corpus.file);
const bodies = corpus.index.map((b) => data.subarray(b.offset, b.offset + b.length));
const totalLines = corpus.index.reduce((n, b) => n + b.msgCount, 0);

/** Calls fn(buf, msgStart, msgEnd) for each frame; the same walk every baseline uses. */
function walk(body: Buffer, fn: (body: Buffer, start: number, end: number) => void): void {
  let i = 0;
  const n = body.length;
  while (i < n) {
    let len = 0;
    let c = body[i]!;
    while (c >= 0x30 && c <= 0x39) { len = len * 10 + c - 0x30; c = body[++i]!; }
    i++;
    fn(body, i, i + len);
    i += len;
  }
}

let sink = 0;
const NAIVE = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) ([\s\S]*)$/;

const contenders: Array<[string, () => number]> = [
  ['bare walk', () => {
    let lines = 0;
    for (const body of bodies) {
      let i = 0;
      const n = body.length;
      while (i < n) {
        let len = 0;
        let c = body[i]!;
        while (c >= 0x30 && c <= 0x39) { len = len * 10 + c - 0x30; c = body[++i]!; }
        i += 1 + len;
        lines++;
      }
    }
    return lines;
  }],
  ['mallet (header fields)', () => {
    let lines = 0;
    for (const body of bodies) {
      for (const m of parseLogplexBody(body).messages) {
        sink += m.procId.length + m.appName.length + m.timestamp.length;
        lines++;
      }
    }
    return lines;
  }],
  ['mallet (header + text)', () => {
    let lines = 0;
    for (const body of bodies) {
      for (const m of parseLogplexBody(body).messages) {
        sink += m.procId.length + m.appName.length + m.timestamp.length + m.message.length;
        lines++;
      }
    }
    return lines;
  }],
  ['glossy', () => {
    let lines = 0;
    for (const body of bodies) {
      walk(body, (b, s, e) => {
        const p = glossy.Parse.parse(b.toString('utf8', s, e));
        sink += (p.pid as string).length;
        lines++;
      });
    }
    return lines;
  }],
  ['naive regex', () => {
    let lines = 0;
    for (const body of bodies) {
      walk(body, (b, s, e) => {
        const m = NAIVE.exec(b.toString('utf8', s, e));
        if (m) sink += m[5]!.length;
        lines++;
      });
    }
    return lines;
  }],
];

const times = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
// One warm-up round, not counted: lets the JIT settle on every contender.
for (const [name, run] of contenders) {
  const lines = run();
  if (lines !== totalLines) throw new Error(`${name} saw ${lines} lines, corpus has ${totalLines}`);
}
for (let r = 0; r < ROUNDS; r++) {
  // No forced GC between runs: a full GC shrinks the young generation, and a parser that makes an
  // object per line then pays for growing it back, which a running server never does.
  for (const [name, run] of contenders) {
    const t0 = process.hrtime.bigint();
    run();
    times.get(name)!.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };
const rate = new Map([...times].map(([name, ts]) => [name, totalLines / median(ts)]));
const glossyRate = rate.get('glossy')!;
const bareRate = rate.get('bare walk')!;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

console.log(`corpus: ${totalLines.toLocaleString('en-US')} lines in ${bodies.length} bodies, ${(data.length / 2 ** 20).toFixed(1)} MiB; median of ${ROUNDS} rounds; ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}\n`);
console.log('| parser | lines/s | vs glossy | vs bare walk |');
console.log('|---|---:|---:|---:|');
for (const [name] of contenders) {
  const r = rate.get(name)!;
  console.log(`| ${name} | ${fmt(r)} | ${(r / glossyRate).toFixed(2)}× | ${(r / bareRate).toFixed(3)}× |`);
}
const b = rate.get('mallet (header fields)')!;
console.log(`\ntargets: mallet (header fields) ≥ 12× glossy: ${(b / glossyRate).toFixed(1)}× ${b / glossyRate >= 12 ? 'ok' : 'MISSED'}; ≥ 0.35× bare walk: ${(b / bareRate).toFixed(3)}× ${b / bareRate >= 0.35 ? 'ok' : 'MISSED'}`);
if (sink === -1) console.log(sink);
