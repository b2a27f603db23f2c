import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { createSyslogListener, type SyslogListener } from '../../src/ingest/syslogListener.js';
import type { LineCounts } from '../../src/ingest/IngestBatch.js';
import type { SyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { timestampMs } from '../../src/ingest/timestampMs.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { loadRulesText } from '../../src/rules/load.js';
import { evaluateEvents } from '../../src/rules/evaluate.js';
import { mayMatch } from '../../src/rules/match.js';
import { MemoryThresholdStore } from '../../src/rules/thresholdMemory.js';
import { MemoryPredictStore } from '../../src/rules/predictMemory.js';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import type { DynoStore } from '../../src/dynos/DynoStore.js';
import type { Firing } from '../../src/rules/Firing.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { BENCH_TOKEN, syslogStream } from '../../bench/support/syslogStream.js';

/*
 * The listener's prefilter (`wants`): a line no rule and no observer could read is never made a
 * message, only counted. It must change nothing else: the same firings, the same dyno records kept,
 * the same lines counted, as when every line is handed over.
 */

const open: SyslogListener[] = [];
afterAll(async () => { await Promise.all(open.map((l) => l.close())); });

function frame(token: string, app: string, proc: string, text: string): Buffer {
  const msg = `<190>1 2024-11-14T03:12:07.123456+00:00 ${token} ${app} ${proc} - - ${text}\n`;
  return Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
}

function send(port: number, bytes: Buffer, piece: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ port, host: '127.0.0.1' }, async () => {
      for (let i = 0; i < bytes.length; i += piece) {
        await new Promise<void>((r, j) => s.write(bytes.subarray(i, i + piece), (err) => (err ? j(err) : r())));
        if ((i / piece) % 5 === 0) await new Promise((r) => setImmediate(r));
      }
      s.end(() => resolve());
    });
    s.once('error', reject);
  });
}

const invalid = async (metrics: Metrics, reason: string) =>
  (await metrics.framesInvalidTotal.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

describe('syslog listener: lines no consumer wants', () => {
  it('are counted per drain token and kind, in the batch they fall in; the kept ones keep their order and fields', async () => {
    const t1 = 'd.11111111-1111-4111-8111-111111111111';
    const t2 = 'd.22222222-2222-4222-8222-222222222222';
    const parts: Buffer[] = [];
    const kept: string[] = [];
    for (let i = 0; i < 300; i++) {
      const token = i % 3 === 2 ? t2 : t1;
      if (i % 7 === 0) { parts.push(frame(token, 'heroku', 'web.1', `keep ${i}`)); kept.push(`${token} keep ${i}`); }
      else if (i % 2 === 0) parts.push(frame(token, 'heroku', 'router', `at=info ${i}`));
      else parts.push(frame(token, 'app', 'web.2', `hello ${i}`));
    }
    // A third token whose lines are all passed over, and a HOSTNAME that is no drain token.
    const t3 = 'd.33333333-3333-4333-8333-333333333333';
    for (let i = 0; i < 5; i++) parts.push(frame(t3, 'other', 'x', `nothing ${i}`));
    parts.push(frame('../etc', 'app', 'web.1', 'sneaky'));
    const metrics = createMetrics(new Registry(), { defaults: false });
    const got: Array<{ token: string; messages: SyslogMessage[]; passedOver: LineCounts | undefined }> = [];
    const listener = createSyslogListener({
      port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }), metrics,
      wants: (line) => line.messageStartsWith!(Buffer.from('keep')),
      maxBatchLines: 8,
      onBatch: async (token, messages, passedOver) => { got.push({ token, messages, passedOver }); },
    });
    open.push(listener);
    const { port } = await listener.listen();
    await send(port, Buffer.concat(parts), 97);
    await listener.close();

    // In stream order per drain token (a batch is handed as one call per token).
    for (const token of [t1, t2]) {
      expect(got.filter((b) => b.token === token).flatMap((b) => b.messages.map((m) => `${m.hostname} ${m.message}`))).toEqual(kept.filter((k) => k.startsWith(token)));
    }
    // Messages are their own objects, not the parser's moving view.
    const all = got.flatMap((b) => b.messages);
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((m) => m.appName === 'heroku' && m.procId === 'web.1')).toBe(true);
    const sum = (token: string) => {
      const c = { heroku: 0, app: 0, other: 0 };
      for (const b of got) if (b.token === token && b.passedOver) { c.heroku += b.passedOver.heroku; c.app += b.passedOver.app; c.other += b.passedOver.other; }
      return c;
    };
    let routers1 = 0, apps1 = 0, routers2 = 0, apps2 = 0;
    for (let i = 0; i < 300; i++) {
      if (i % 7 === 0) continue;
      const two = i % 3 === 2;
      if (i % 2 === 0) { if (two) routers2++; else routers1++; } else if (two) apps2++; else apps1++;
    }
    expect(sum(t1)).toEqual({ heroku: routers1, app: apps1, other: 0 });
    expect(sum(t2)).toEqual({ heroku: routers2, app: apps2, other: 0 });
    expect(sum(t3)).toEqual({ heroku: 0, app: 0, other: 5 });
    expect(got.filter((b) => b.token === t3).every((b) => b.messages.length === 0)).toBe(true);
    expect(await invalid(metrics, 'bad-drain-token')).toBe(1);
  });
});

describe('the service\'s prefilter (Pipeline.wants) over the benchmark corpus', () => {
  it('changes no firing, no dyno record and no line count', async () => {
    const { stream, frames } = await syslogStream(50_000);
    const rules = parse(readFileSync(new URL('../../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; apps?: unknown };
    rules.apps = { 'bench-app': { drain_tokens: [BENCH_TOKEN] } };
    const loaded = loadRulesText(stringify(rules), 'rules.yml', { HEROKU_API_TOKEN: 'x' });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const ruleSet = loaded.ruleSet;

    async function run(filter: boolean) {
      const keys = redisKeys('t');
      const metrics = createMetrics(new Registry(), { defaults: false });
      const store = new MemoryThresholdStore();
      const predictor = new MemoryPredictStore();
      const firings: string[] = [];
      let writes = 0;
      const memory = new MemoryDynoStore();
      const dynos: DynoStore = Object.assign(Object.create(memory) as DynoStore, {
        write: async (app: string, batch: Parameters<DynoStore['write']>[1]) => {
          writes += batch.samples.length + batch.events.length;
          await memory.write(app, batch);
        },
      });
      // The lines' own time, so that the two runs' windows are the same whatever the batching.
      const clock = (ev: { timeMs?: number; timestamp: string }) => ev.timeMs ?? timestampMs(ev.timestamp);
      const pipeline = new Pipeline({
        redis: { defineCommand: () => {} } as unknown as Redis, keys, metrics, logger: pino({ level: 'silent' }),
        engine: {
          judge: async (events) => { const e = await evaluateEvents(events, { ruleSet, store, predictor, keys, clock }); return { firings: e.firings, count: () => {} }; },
          mayMatch: (event) => mayMatch(ruleSet.rules, event),
        },
        sink: { submit: async (fs: readonly Firing[]) => { for (const f of fs) firings.push(`${f.rule} ${f.target} ${f.window}`); return []; } },
        observers: [new DynoObserver(dynos)],
      });
      let made = 0;
      let seq = 0;
      const listener = createSyslogListener({
        port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }), metrics,
        ...(filter ? { wants: pipeline.wants } : {}),
        onBatch: async (drainToken, messages, passedOver) => {
          made += messages.length;
          await pipeline.ingest({ app: 'bench-app', drainToken, frameId: `s${seq++}`, dedupe: false, receivedAt: 0, messages, passedOver });
        },
      });
      open.push(listener);
      const { port } = await listener.listen();
      await send(port, stream, 65_536);
      await listener.close();
      const lines = (await metrics.linesTotal.get()).values.map((v) => `${v.labels.source} ${v.value}`).sort();
      // What the observer kept (one point a minute per instance, the lifecycle): the samples it
      // is shown within a minute depend on how the lines fell into batches, what it keeps does not.
      return { firings, writes, dynos: JSON.stringify(await memory.read('bench-app')), lines, made };
    }

    const all = await run(false);
    const filtered = await run(true);
    expect(all.made).toBe(frames);
    expect(all.firings.length).toBeGreaterThan(0);
    expect(all.writes).toBeGreaterThan(0);
    expect(filtered.firings).toEqual(all.firings);
    expect(filtered.dynos).toEqual(all.dynos);
    expect(filtered.lines).toEqual(all.lines);
    // What it is for: most lines (router and app output) never become messages.
    expect(filtered.made).toBeLessThan(frames * 0.2);
  }, 120_000);
});
