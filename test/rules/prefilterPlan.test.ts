import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ensureCorpus } from '../../bench/corpus.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { BodyPrefilter } from '../../src/ingest/bodyPrefilter.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { LINE_ROUTER } from '../../src/ingest/lineClass.js';
import type { CompiledRule } from '../../src/rules/CompiledRule.js';
import { loadRules, loadRulesText } from '../../src/rules/load.js';
import { mayMatch } from '../../src/rules/match.js';
import { isDynoProcess, wantsDynoLine } from '../../src/dynos/dynoLines.js';
import { samplePath } from '../support/samples.js';

/**
 * The prefilter compiled per rules array (src/rules/prefilter.ts) and wantsDynoLine's first-byte
 * table must keep exactly the lines the first prefilter kept: a line it refuses is never made a
 * message, so one refused wrongly is a lost trigger, and one kept wrongly only costs time. This
 * file keeps the first versions as the reference (each rule of the line's kind tested in turn, the
 * dyno texts tried one prefix after the other) and compares every answer over the benchmark
 * corpus, the fixtures and hand-made edge lines, through the three ways a line reaches them: the
 * parser's moving view (the HTTPS drain), a body's events, and a plain string event.
 */

function refMayMatch(rules: readonly CompiledRule[], event: DrainEvent): boolean {
  const list = rules.filter((r) => (r.source === undefined || r.source === event.source) && (r.process === undefined || r.process(event.process)));
  if (list.length === 0) return false;
  if (event.messageIncludes === undefined || event.messageStartsWith === undefined) return true;
  for (const rule of list) {
    const lit = rule.literal;
    if (lit !== undefined) {
      const bytes = rule.literalBytes;
      if (bytes === undefined) return true;
      if (lit.anchored ? !event.messageStartsWith(bytes) : !event.messageIncludes(bytes)) continue;
    }
    let present = true;
    for (let j = 0; j < rule.fieldLiterals.length && present; j++) {
      const bytes = rule.fieldLiteralBytes[j];
      if (bytes !== undefined) present = event.messageIncludes(bytes);
    }
    if (present) return true;
  }
  return false;
}

const REF_PREFIXES = ['Starting process with command', 'State changed from ', 'Process exited', 'Cycling', 'Restarting', 'Error R15'];

function refStartsWith(e: DrainEvent, text: string): boolean {
  return e.messageStartsWith ? e.messageStartsWith(Buffer.from(text)) : e.message.startsWith(text);
}

function refWantsDynoLine(e: DrainEvent): boolean {
  if (e.source === 'heroku') {
    if (!isDynoProcess(e.process)) return false;
    if (refStartsWith(e, 'source=')) {
      return e.messageIncludes ? e.messageIncludes(Buffer.from('sample#memory_total=')) : e.message.includes('sample#memory_total=');
    }
    return REF_PREFIXES.some((p) => refStartsWith(e, p));
  }
  return e.source === 'app' && e.process === 'api' && refStartsWith(e, 'Release v');
}

function frame(header: string, text: string | Buffer): Buffer {
  const msg = Buffer.concat([Buffer.from(header), Buffer.from(text)]);
  return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
}

/** `TS heroku[web.1]: text` (dyno-lines.txt's rendering, a tab and the expectation after) as a frame. */
function renderedFrame(line: string): Buffer | undefined {
  const m = /^(\S+) ([a-z]+)\[([^\]]+)\]: ([^\t]*)/.exec(line);
  return m ? frame(`<45>1 ${m[1]} host ${m[2]} ${m[3]} - `, m[4]!) : undefined;
}

const EDGE_TEXTS: readonly (string | Buffer)[] = [
  'source=web.1 dyno=heroku.1.4b88c98d-8f77-4b4f-8a9b-0e4d3d1c2b3a sample#load_avg_1m=0.01',
  'source=web.1 dyno=heroku.1.4b88c98d-8f77-4b4f-8a9b-0e4d3d1c2b3a sample#memory_total=10.00MB sample#memory_quota=512.00MB',
  'sample#memory_total=1MB', 's', 'S', '', 'Cycling', 'Restarting', 'Process exited with status 137', 'Error R15 (Memory quota vastly exceeded)',
  'Error R14 (Memory quota exceeded)', 'Error R14', 'State changed from up to crashed', 'Starting process with command `x`', 'Release v12 created by a@b.c',
  'at=error code=H12 desc="Request timeout" service=30001ms', 'at=info code=H12', 'H12 service= code=', 'Prix € 12', '😀 boom', 'é42', 'code=H12 clé=€',
  Buffer.from([0xef, 0xbb, 0xbf, 0x53, 0x74]), Buffer.from([0xff, 0x73, 0x6f]), Buffer.from([0xe2, 0x82]),
];
const EDGE_KINDS = ['heroku web.1', 'heroku web-abc12', 'heroku worker.2', 'heroku router', 'heroku logplex', 'heroku api', 'app api', 'app web.1', 'app router', 'heroku-postgres postgres.1', 'app run.3'];

function edgeBody(): Buffer {
  const frames: Buffer[] = [];
  for (const kind of EDGE_KINDS) for (const t of EDGE_TEXTS) frames.push(frame(`<134>1 2024-05-01T12:00:00.123456+00:00 host ${kind} - `, t));
  return Buffer.concat(frames);
}

async function bodies(): Promise<{ name: string; body: Buffer }[]> {
  const out: { name: string; body: Buffer }[] = [];
  const corpus = await ensureCorpus(20_000);
  const data = readFileSync(corpus.file);
  corpus.index.forEach((b, i) => {
    out.push({ name: `corpus#${i}`, body: data.subarray(b.offset, b.offset + b.length) });
  });
  for (const f of readdirSync(samplePath('bodies')).filter((x) => x.endsWith('.logplex'))) out.push({ name: f, body: readFileSync(samplePath('bodies', f)) });
  out.push({ name: 'r14-twice', body: readFileSync(new URL('../../examples/r14-twice.logplex', import.meta.url)) });
  for (const f of readdirSync(samplePath('lines'))) {
    const lines = readFileSync(samplePath('lines', f), 'utf8').split('\n').filter((l) => l.startsWith('<'));
    out.push({ name: f, body: Buffer.concat(lines.map((l) => frame('', l))) });
  }
  for (const f of ['dyno-lines.txt', 'preboot-lines.txt']) {
    const lines = readFileSync(new URL(`../fixtures/${f}`, import.meta.url), 'utf8').split('\n').filter((l) => !l.startsWith('#'));
    out.push({ name: f, body: Buffer.concat(lines.map(renderedFrame).filter((b): b is Buffer => b !== undefined)) });
  }
  out.push({ name: 'edges', body: edgeBody() });
  return out;
}

async function ruleSets(): Promise<{ name: string; rules: readonly CompiledRule[] }[]> {
  const sets: { name: string; rules: readonly CompiledRule[] }[] = [];
  for (const path of ['config/rules.example.yml', 'test/fixtures/rules/good-minimal.yml']) {
    const r = await loadRules(path, {});
    if (!r.ok) throw new Error(`${path} invalid`);
    sets.push({ name: path, rules: r.ruleSet.rules });
  }
  const text = (lines: string[]) => {
    const r = loadRulesText(['version: 1', 'rules:', ...lines].join('\n'), 'inline.yml', {});
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.ruleSet.rules;
  };
  sets.push({ name: 'mixed sources and literals', rules: text([
    '  - { name: anchored, match: { source: any, message: "^Prix €" }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: floating, match: { source: any, message: "😀 boom" }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: regex, match: { source: any, message: "é(?<n>[0-9]+)" }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: fields, match: { source: any, fields: { code: H12, "clé": "€" } }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: app-router, match: { source: app, process: router, message: "boom" }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: api, match: { source: app, process: api, message: "^Release v" }, actions: [ { type: redis-stop-key } ] }',
  ]) });
  sets.push({ name: 'a rule that needs nothing of the text', rules: text([
    '  - { name: worker-any, match: { process: "worker.*" }, actions: [ { type: redis-stop-key } ] }',
    '  - { name: router-h12, match: { process: router, fields: { code: H12 } }, actions: [ { type: redis-stop-key } ] }',
  ]) });
  sets.push({ name: 'app output only', rules: text([
    '  - { name: oom, match: { source: app, process: "web.*", message: "OutOfMemory" }, actions: [ { type: redis-stop-key } ] }',
  ]) });
  return sets;
}

function plainEvent(e: DrainEvent): DrainEvent {
  return { app: e.app, id: e.id, receivedAt: e.receivedAt, timestamp: e.timestamp, source: e.source, process: e.process, message: e.message };
}

describe('the compiled prefilter keeps exactly the lines the first one kept', async () => {
  const all = await bodies();
  const sets = await ruleSets();

  it.each(sets)('$name: rules, and the dyno lines, on the parser view, events and string events', ({ rules }) => {
    let lines = 0;
    let refused = 0;
    let refusedRouter = 0;
    let dynoKept = 0;
    const diffs: string[] = [];
    const compare = (where: string, e: DrainEvent) => {
      lines++;
      // Each answer is asked first of the new code, then of the reference, on the same line.
      const got = mayMatch(rules, e);
      const want = refMayMatch(rules, e);
      const dyno = wantsDynoLine(e);
      const dynoWant = refWantsDynoLine(e);
      if (got !== want || dyno !== dynoWant) diffs.push(`${where}: ${e.source} ${e.process} ${JSON.stringify(e.message.slice(0, 60))} mayMatch ${got}/${want} dyno ${dyno}/${dynoWant}`);
      if (!got) {
        refused++;
        if (e.lineClass === LINE_ROUTER) refusedRouter++;
      }
      if (dyno) dynoKept++;
    };
    for (const { name, body } of all) {
      parseLogplexBody(body, new BodyPrefilter((view) => {
        compare(`${name} view`, view);
        return false;
      }));
      const events = drainEvents({ app: 'acme-shop', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, ...parseLogplexBody(body) });
      for (const e of events) compare(`${name} event`, e);
      for (const e of events) compare(`${name} string`, plainEvent(e));
    }
    expect(diffs.slice(0, 20)).toEqual([]);
    // The comparison saw both answers: lines refused and lines kept, of both halves.
    expect(lines).toBeGreaterThan(60_000);
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(lines);
    expect(dynoKept).toBeGreaterThan(1000);
    if (rules.some((r) => r.source !== 'app')) expect(refusedRouter).toBeGreaterThan(0);
  });

  it('a reloaded rules array is judged by its own rules, not the plan of the one before', () => {
    const [example, , mixed] = sets;
    const body = edgeBody();
    for (const rules of [example!.rules, mixed!.rules, example!.rules]) {
      const events = drainEvents({ app: 'a', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, ...parseLogplexBody(body) });
      expect(events.map((e) => mayMatch(rules, e))).toEqual(events.map((e) => refMayMatch(rules, e)));
    }
  });
});
