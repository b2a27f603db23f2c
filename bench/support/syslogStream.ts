/**
 * The syslog benchmarks' stream: the benchmark corpus (HTTPS-drain bodies) rewritten to the syslog
 * drain's header, one octet-counted frame per line, then a marker frame.
 *   HTTPS-drain MSG `<PRI>1 TS host APP PROC - TEXT` → syslog-drain MSG `<PRI>1 TS d.token APP PROC - - TEXT`
 */
import { readFileSync } from 'node:fs';
import { newLineCounts, type LineCounts } from '../../src/ingest/IngestBatch.js';
import { LINE_APP, LINE_API, LINE_PLATFORM, LINE_ROUTER } from '../../src/ingest/lineClass.js';
import { LogplexStream } from '../../src/ingest/logplexStream.js';
import type { BufferedSyslogMessage, SyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { parse, stringify } from 'yaml';
import { loadRulesText } from '../../src/rules/load.js';
import type { CompiledRuleSet } from '../../src/rules/CompiledRule.js';
import { ensureCorpus } from '../corpus.js';

export const BENCH_TOKEN = 'd.8c1e5c1a-1d2e-4a47-9d6f-0b3a4c5d6e7f';
export const BENCH_MARKER = 'MALLET-BENCH-MARKER';
const LF = Buffer.from('\n');

export async function syslogStream(lines: number): Promise<{ stream: Buffer; frames: number }> {
  const corpus = await ensureCorpus(lines);
  const data = readFileSync(corpus.file);
  const parts: Buffer[] = [];
  let frames = 0;
  for (const b of corpus.index) {
    const body = data.subarray(b.offset, b.offset + b.length);
    let i = 0;
    while (i < body.length) {
      let len = 0;
      while (body[i]! >= 0x30 && body[i]! <= 0x39) len = len * 10 + body[i++]! - 0x30;
      const msg = body.subarray(i + 1, i + 1 + len);
      i += 1 + len;
      // Fields: PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID; the rest is TEXT.
      let sp = -1;
      const cuts: number[] = [];
      for (let f = 0; f < 6; f++) { sp = msg.indexOf(0x20, sp + 1); cuts.push(sp); }
      if (cuts.includes(-1)) continue;
      const head = `${msg.subarray(0, cuts[1]! + 1).toString('latin1')}${BENCH_TOKEN} ${msg.subarray(cuts[2]! + 1, cuts[5]!).toString('latin1')} - `;
      // Syslog drains end every message in LF (the listener breaks the stream on one that does
      // not); the HTTPS corpus has chunks and L10 notices without one.
      const text = msg.subarray(cuts[5]! + 1);
      const rest = text[text.length - 1] === 0x0a ? text : Buffer.concat([text, LF]);
      const headBuf = Buffer.from(head, 'latin1');
      parts.push(Buffer.from(`${headBuf.length + rest.length} `), headBuf, rest);
      frames++;
    }
  }
  const marker = `<134>1 ${new Date().toISOString()} ${BENCH_TOKEN} app web.1 - - ${BENCH_MARKER}\n`;
  parts.push(Buffer.from(`${Buffer.byteLength(marker)} ${marker}`));
  return { stream: Buffer.concat(parts), frames: frames + 1 };
}

export interface ListenerBatch { messages: SyslogMessage[]; passedOver: LineCounts }

/**
 * The stream cut as the syslog listener cuts it (64 KiB reads, a batch per 1 MiB or 4096 kept
 * lines), the lines `wants` refuses counted by class as the listener counts them.
 */
export function listenerBatches(stream: Buffer, wants: (line: BufferedSyslogMessage) => boolean): ListenerBatch[] {
  const batches: ListenerBatch[] = [];
  let counts = newLineCounts();
  const reader = new LogplexStream({
    structuredData: true,
    keep: (line) => {
      if (wants(line)) return true;
      const c = line.lineClass;
      if ((c & (LINE_ROUTER | LINE_PLATFORM)) !== 0) counts.heroku++;
      else if ((c & (LINE_APP | LINE_API)) !== 0) counts.app++;
      else counts.other++;
      return false;
    },
  });
  let pending: SyslogMessage[] = [];
  let bytes = 0;
  for (let at = 0; at < stream.length; at += 65536) {
    const chunk = stream.subarray(at, Math.min(stream.length, at + 65536));
    for (const m of reader.push(chunk).messages) pending.push(m);
    bytes += chunk.length;
    if (bytes >= 1 << 20 || pending.length >= 4096) {
      batches.push({ messages: pending, passedOver: counts });
      pending = [];
      counts = newLineCounts();
      bytes = 0;
    }
  }
  batches.push({ messages: pending, passedOver: counts });
  return batches;
}

/**
 * The example rules for the stream's app, with the marker's rule and limits no storm of the
 * stream reaches (the benches measure the pipeline, not the limits).
 */
export function streamRuleSet(): CompiledRuleSet {
  const rules = parse(readFileSync(new URL('../../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
  rules.apps = { 'bench-app': { drain_tokens: [BENCH_TOKEN] } };
  rules.rules.push({ name: 'bench-marker', match: { source: 'app', message: `^${BENCH_MARKER}` }, cooldown: '1s', actions: [{ type: 'redis-stop-key', key: 'marker', ttl: '60s' }] });
  rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
  const loaded = loadRulesText(stringify(rules), 'rules.yml', { HEROKU_API_TOKEN: 'x' });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.ruleSet;
}
