import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { LogplexStream } from '../../src/ingest/logplexStream.js';
import { LiteralScan, MAX_MESSAGE_BYTES, type SyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { literalBytes } from '../../src/rules/literal.js';
import { loadRules, loadRulesText } from '../../src/rules/load.js';
import { matchEvent, mayMatch, type RuleMatch } from '../../src/rules/match.js';
import type { CompiledRuleSet } from '../../src/rules/CompiledRule.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { samplePath } from '../support/samples.js';

/** An HTTPS-drain body holding one frame per text (raw bytes, so bad UTF-8 can be sent). */
function body(texts: readonly Buffer[], proc = 'web.1'): Buffer {
  return Buffer.concat(texts.map((t) => {
    const msg = Buffer.concat([Buffer.from(`<134>1 2024-05-01T12:00:00.123456+00:00 host app ${proc} - `), t]);
    return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
  }));
}

function messages(texts: readonly Buffer[]): SyslogMessage[] {
  const parsed = parseLogplexBody(body(texts));
  expect(parsed.messages).toHaveLength(texts.length);
  return parsed.messages as SyslogMessage[];
}

/** Every byte-path answer for `literal` on `m`, next to the string path's. */
function answers(m: SyslogMessage, literal: string, scan: LiteralScan) {
  const needle = literalBytes(literal)!;
  return {
    bytes: { includes: m.messageIncludes!(needle), scanned: m.messageIncludes!(needle, scan), startsWith: m.messageStartsWith!(needle) },
    text: { includes: m.message.includes(literal), scanned: m.message.includes(literal), startsWith: m.message.startsWith(literal) },
  };
}

function expectAgree(texts: readonly Buffer[], literal: string): void {
  const scan = new LiteralScan();
  for (const m of messages(texts)) {
    const a = answers(m, literal, scan);
    expect(a.bytes, JSON.stringify({ text: m.message.slice(0, 80), literal })).toEqual(a.text);
  }
}

const b = (s: string) => Buffer.from(s, 'utf8');

describe('literal tests on the bytes answer as the decoded text does', () => {
  it('multibyte literals, found and not found', () => {
    const texts = [b('prix 12€ payé'), b('日本語のログ'), b('emoji 😀 here'), b('plain ascii'), b('e\u0301 (decomposed) vs é')];
    for (const lit of ['€', 'payé', '日本', '語のロ', '😀', 'é', 'e\u0301', 'ascii', 'ログ']) expectAgree(texts, lit);
  });

  it('a literal at the very end, with and without the one trailing LF', () => {
    const texts = [b('ends with code=H12'), b('ends with code=H12\n'), b('two LFs code=H12\n\n'), b('code=H12'), b('code=H1'), b('\n')];
    for (const lit of ['code=H12', 'H12', 'H12\n', '\n', 'code=']) expectAgree(texts, lit);
    const [plain, oneLf, twoLf] = messages(texts);
    expect(plain!.messageIncludes!(b('H12\n'))).toBe(false);
    expect(oneLf!.messageIncludes!(b('H12\n'))).toBe(false);
    expect(twoLf!.messageIncludes!(b('H12\n'))).toBe(true);
  });

  it('a message cut at 64 KiB: only what is kept counts, also for a character split by the cut', () => {
    const pad = 'x'.repeat(MAX_MESSAGE_BYTES - 4);
    const texts = [
      b(`${pad}TAIL`), // ends exactly at the cut
      b(`${pad}TAILmore`), // literal before the cut, more after
      b(`${pad}xxTAIL`), // literal straddles the cut
      b(`${pad}xx€`), // € (3 bytes) split by the cut
      b(`${pad}x€`), // € ends exactly at the cut
      b(`${pad}TAIL\n`), // LF beyond the cut
    ];
    for (const lit of ['TAIL', 'AIL', '€', 'xxTA', 'x€', 'TAILm']) expectAgree(texts, lit);
    const [exact, , straddles] = messages(texts);
    expect(exact!.messageIncludes!(b('TAIL'), new LiteralScan())).toBe(true);
    expect(straddles!.messageIncludes!(b('TAIL'), new LiteralScan())).toBe(false);
  });

  it('bad UTF-8 next to the literal cannot swallow it', () => {
    const texts = [
      Buffer.concat([Buffer.from([0xe2, 0x82]), b('code=H12')]),
      Buffer.concat([b('code=H12'), Buffer.from([0xe2])]),
      Buffer.concat([Buffer.from([0xf0, 0x9f, 0x98]), b('😀')]),
      Buffer.from([0xc3]), // a lone lead byte
      Buffer.concat([b('\uFEFF'), b('BOM first')]),
    ];
    for (const lit of ['code=', 'H12', '😀', 'Ã', '\uFEFFBOM', 'BOM']) expectAgree(texts, lit);
  });

  it('literals a byte search could answer differently get no bytes (the string path decides)', () => {
    expect(literalBytes('\uFFFD')).toBeUndefined();
    expect(literalBytes('a\uFFFDb')).toBeUndefined();
    expect(literalBytes('\uD800')).toBeUndefined(); // lone surrogate: no UTF-8 form
    expect(literalBytes('x\uDC00')).toBeUndefined();
    expect(literalBytes('')).toBeUndefined();
    expect(literalBytes('😀')).toEqual(Buffer.from([0xf0, 0x9f, 0x98, 0x80]));
  });

  it('one scan serves lines asked in any order, and lines of other buffers', () => {
    const texts = [b('a code=1'), b('none'), b('none'), b('b code=2'), b('none'), b('c code=3')];
    const ms = messages(texts);
    const other = messages([b('none'), b('x code=9')]);
    const scan = new LiteralScan();
    const needle = literalBytes('code=')!;
    const order = [5, 0, 1, 4, 3, 2, 0, 5];
    for (const i of order) expect(ms[i]!.messageIncludes!(needle, scan)).toBe(ms[i]!.message.includes('code='));
    expect(other.map((m) => m.messageIncludes!(needle, scan))).toEqual([false, true]);
  });

  it('lines of a syslog stream: bytes appended later to the same buffer are seen by later batches', () => {
    const stream = new LogplexStream({ structuredData: false });
    const needle = literalBytes('code=')!;
    const frames = body([b('none'), b('none'), b('has code=1'), b('none')]);
    // Cut inside the third frame: the first batch's buffer is filled by the next push.
    const cut = frames.indexOf('has') - 2;
    const first = stream.push(frames.subarray(0, cut)).messages as SyslogMessage[];
    const scan1 = new LiteralScan();
    expect(first.map((m) => m.messageIncludes!(needle, scan1))).toEqual([false, false]);
    const second = stream.push(frames.subarray(cut)).messages as SyslogMessage[];
    const scan2 = new LiteralScan();
    expect(second.map((m) => m.messageIncludes!(needle, scan2))).toEqual([true, false]);
  });

  it('property: random lines and literals, every path agrees with the decoded text', () => {
    const fragment = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }).map(b),
      fc.constantFrom('code=', 'H12', '€', '😀', '\n', '\r\n', ' ', '=').map(b),
      fc.uint8Array({ minLength: 1, maxLength: 3 }).map((a) => Buffer.from(a)),
    );
    // One line per message, as logplex sends them: an LF with text after it makes the frame
    // broken (spans-lines), so inner LFs become spaces and only a trailing one stays.
    const text = fc.array(fragment, { maxLength: 12 }).map((fs) => {
      const t = Buffer.concat(fs);
      for (let i = 0; i < t.length - 1; i++) if (t[i] === 0x0a) t[i] = 0x20;
      return t;
    });
    const literal = fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }),
      fc.constantFrom('code=', 'H12', '€', '😀', '\n', 'e=', 'ode'),
    ).filter((l) => literalBytes(l) !== undefined);
    fc.assert(fc.property(fc.array(text, { minLength: 1, maxLength: 8 }), fc.array(literal, { minLength: 1, maxLength: 3 }), (texts, lits) => {
      const ms = messages(texts);
      const scan = new LiteralScan();
      for (const m of ms) {
        for (const lit of lits) {
          const a = answers(m, lit, scan);
          expect(a.bytes).toEqual(a.text);
        }
      }
    }), { numRuns: 500 });
  });
});

/** The same line as a plain string event: no byte methods, so the matcher reads `message`. */
function stringEvent(e: DrainEvent): DrainEvent {
  return { app: e.app, id: e.id, receivedAt: e.receivedAt, timestamp: e.timestamp, source: e.source, process: e.process, message: e.message };
}

function matches(rs: CompiledRuleSet, events: readonly DrainEvent[]): string[] {
  const out: RuleMatch[] = [];
  for (const e of events) {
    const before = out.length;
    matchEvent(rs.rules, e, out);
    // The ingest's prefilter (no object for a line it refuses) must never refuse a line that matches.
    if (out.length > before) expect(mayMatch(rs.rules, e)).toBe(true);
  }
  return out.map((m) => `${m.rule.name} ${m.event.id} ${JSON.stringify(m.captures)} ${JSON.stringify([...(m.fields ?? [])])}`);
}

function eventsOf(bodyBytes: Buffer): DrainEvent[] {
  const { messages: ms } = parseLogplexBody(bodyBytes);
  return drainEvents({ app: 'acme-shop', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages: ms });
}

describe('matchEvent: byte prefilter and string path pick the same lines', () => {
  it('the pipeline hands the rules events with byte tests', () => {
    const [e] = eventsOf(body([b('x')]));
    expect(typeof e!.messageIncludes).toBe('function');
    expect(typeof e!.messageStartsWith).toBe('function');
  });

  it('the example rules on every sample body', async () => {
    const r = await loadRules('config/rules.example.yml', {});
    if (!r.ok) throw new Error('example rules invalid');
    const files = readdirSync(samplePath('bodies')).filter((f) => f.endsWith('.logplex'));
    expect(files.length).toBeGreaterThan(3);
    let total = 0;
    let refused = 0;
    let lines = 0;
    for (const file of files) {
      const events = eventsOf(readFileSync(samplePath('bodies', file)));
      const got = matches(r.ruleSet, events);
      expect(got).toEqual(matches(r.ruleSet, events.map(stringEvent)));
      total += got.length;
      refused += events.filter((e) => !mayMatch(r.ruleSet.rules, e)).length;
      lines += events.length;
    }
    expect(total).toBeGreaterThan(0);
    // And it refuses most lines (router and app output), else it would save nothing.
    expect(refused / lines).toBeGreaterThan(0.5);
  });

  it('property: rules with multibyte literals and fields, over random lines', () => {
    const rules = loadRulesText([
      'version: 1',
      'rules:',
      '  - { name: anchored, match: { source: any, message: "^Prix €" }, actions: [ { type: redis-stop-key } ] }',
      '  - { name: floating, match: { source: any, message: "😀 boom" }, actions: [ { type: redis-stop-key } ] }',
      '  - { name: regex, match: { source: any, message: "é(?<n>[0-9]+)" }, actions: [ { type: redis-stop-key } ] }',
      '  - { name: fields, match: { source: any, fields: { code: H12, "clé": "€" } }, actions: [ { type: redis-stop-key } ] }',
    ].join('\n'), 'r.yml', {});
    if (!rules.ok) throw new Error(JSON.stringify(rules.errors));
    const fragment = fc.oneof(
      fc.constantFrom('Prix €', '😀 boom', 'é12', 'code=H12', 'clé=€', ' ', '\n', 'x').map(b),
      fc.uint8Array({ minLength: 1, maxLength: 2 }).map((a) => Buffer.from(a)),
    );
    const text = fc.array(fragment, { maxLength: 8 }).map((fs) => Buffer.concat(fs));
    fc.assert(fc.property(fc.array(text, { minLength: 1, maxLength: 10 }), (texts) => {
      const events = eventsOf(body(texts));
      expect(matches(rules.ruleSet, events)).toEqual(matches(rules.ruleSet, events.map(stringEvent)));
    }), { numRuns: 300 });
  });
});

describe('matchEvent: rules remembered per kind of line (APP-NAME, PROCID)', () => {
  const set = (yaml: string) => {
    const r = loadRulesText(`version: 1\nrules:\n${yaml}`, 'r.yml', {});
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.ruleSet;
  };
  const hit = (rs: CompiledRuleSet, source: string, proc: string, text: string) => {
    const out: RuleMatch[] = [];
    matchEvent(rs.rules, { app: 'a', id: 'i', receivedAt: 0, timestamp: '-', source, process: proc, message: text }, out);
    return out.map((m) => m.rule.name);
  };

  it('two rule sets used in turn each keep their own answers', () => {
    const web = set('  - { name: web, match: { process: "web.*", message: "boom" }, actions: [ { type: redis-stop-key } ] }\n');
    const worker = set('  - { name: worker, match: { process: "worker.*", message: "boom" }, actions: [ { type: redis-stop-key } ] }\n');
    for (let k = 0; k < 3; k++) {
      expect(hit(web, 'heroku', 'web.1', 'boom')).toEqual(['web']);
      expect(hit(worker, 'heroku', 'web.1', 'boom')).toEqual([]);
      expect(hit(worker, 'heroku', 'worker.1', 'boom')).toEqual(['worker']);
      expect(hit(web, 'heroku', 'worker.1', 'boom')).toEqual([]);
    }
  });

  it('many PROCIDs from the lines (more than the table holds) keep matching right, in rule order', () => {
    const rs = set([
      '  - { name: any, match: { source: any, message: "boom" }, actions: [ { type: redis-stop-key } ] }',
      '  - { name: run, match: { process: "run.*", message: "boom" }, actions: [ { type: redis-stop-key } ] }',
      '  - { name: app-web, match: { source: app, process: "web.?", message: "boom" }, actions: [ { type: redis-stop-key } ] }',
    ].join('\n') + '\n');
    for (let n = 0; n < 5000; n++) {
      expect(hit(rs, 'heroku', `run.${n}`, 'boom')).toEqual(['any', 'run']);
      if (n % 97 === 0) {
        expect(hit(rs, 'app', 'web.1', 'boom')).toEqual(['any', 'app-web']);
        expect(hit(rs, 'heroku', 'web.1', 'boom')).toEqual(['any']);
        expect(hit(rs, 'app', `run.${n}`, 'no')).toEqual([]);
      }
    }
  });
});
