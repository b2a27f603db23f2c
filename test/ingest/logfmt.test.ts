import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LogfmtFields, parseLogfmt } from '../../src/ingest/logfmt.js';
import { parseSyslogHeader } from '../../src/ingest/syslogHeader.js';
import { samplePath } from '../support/samples.js';

function textsOf(file: string): string[] {
  return readFileSync(samplePath('lines', file), 'utf8').split('\n').filter(Boolean).map((line) => {
    const buf = Buffer.from(line);
    return parseSyslogHeader(buf, 0, buf.length, { structuredData: false })!.message;
  });
}

describe('parseLogfmt', () => {
  it('reads an H10 with empty values', () => {
    const f = parseLogfmt('at=error code=H10 desc="App crashed" method=GET path="/" host=myapp.herokuapp.com fwd=17.17.17.17 dyno= connect= service= status=503 bytes=');
    expect(Object.fromEntries(f)).toEqual({
      at: 'error', code: 'H10', desc: 'App crashed', method: 'GET', path: '/', host: 'myapp.herokuapp.com',
      fwd: '17.17.17.17', dyno: '', connect: '', service: '', status: '503', bytes: '',
    });
  });

  it('reads leading keys, unknown keys and quoted values with spaces and escapes', () => {
    const f = parseLogfmt('sock=backend at=error code=H18 agent="Mozilla/5.0 (X11) \\"quoted\\" \\\\ end" tls_version=tls1.3 flag');
    expect(f.get('sock')).toBe('backend');
    expect(f.get('at')).toBe('error');
    expect(f.get('agent')).toBe('Mozilla/5.0 (X11) "quoted" \\ end');
    expect(f.get('tls_version')).toBe('tls1.3');
    expect(f.get('flag')).toBe('');
    expect(f.has('missing')).toBe(false);
  });

  it('reads runtime-metrics sample# keys with units', () => {
    const f = parseLogfmt('source=web.1 dyno=heroku.261104379.cd817c77 sample#memory_total=221.47MB sample#memory_pgpgin=149293pages sample#memory_quota=512.00MB');
    expect(f.get('sample#memory_total')).toBe('221.47MB');
    expect(f.get('sample#memory_pgpgin')).toBe('149293pages');
    expect(f.get('sample#memory_quota')).toBe('512.00MB');
    expect(f.get('source')).toBe('web.1');
  });

  it('skips junk and keeps going', () => {
    const f = parseLogfmt('  "stray quote" =oops a=b=c k"v x=1  unclosed="to the end');
    expect(Object.fromEntries(f)).toEqual({ a: 'b=c', x: '1', unclosed: 'to the end' });
  });

  it('keeps the last of a repeated key', () => {
    expect(parseLogfmt('dyno=web.1 dyno=web.2').get('dyno')).toBe('web.2');
  });

  it('every router line has at, a code or method, and a status', () => {
    const texts = textsOf('router.txt');
    expect(texts.length).toBeGreaterThan(30);
    for (const text of texts) {
      const f = parseLogfmt(text);
      expect(['info', 'error', 'warning']).toContain(f.get('at'));
      expect(f.get('status') ?? f.get('code')).toBeDefined();
      // a dyno, when present, is a dyno name or empty — never swallowed into a neighbour
      const dyno = f.get('dyno');
      if (dyno !== undefined) expect(dyno).toMatch(/^([a-z][a-z0-9_]*\.[0-9]+)?$/);
    }
  });

  it('every sample#memory_total line gives a number with MB', () => {
    const texts = textsOf('runtime-metrics.txt').filter((t) => t.includes('sample#memory_total'));
    expect(texts.length).toBeGreaterThan(5);
    for (const text of texts) {
      expect(parseLogfmt(text).get('sample#memory_total')).toMatch(/^\d+(\.\d+)?MB$/);
    }
  });

  it('is linear on a long hostile line', () => {
    const f = parseLogfmt(`${'a="\\'.repeat(20000)}`);
    expect(f.get('a')).toBeDefined();
  });
});

describe('LogfmtFields: parseLogfmt read one key at a time', () => {
  // Texts from logfmt's own characters (space, tab, =, quote, backslash) and a few key letters,
  // so that repeats, quotes, escapes, bare keys and stray tokens are common.
  const text = fc.array(fc.constantFrom(' ', '\t', '=', '"', '\\', 'a', 'b', 'k', 'é', 'sample#m', '1MB'), { maxLength: 40 }).map((a) => a.join(''));
  // Without quotes: the lines LogfmtFields reads by the native search (plainValue).
  const plain = fc.array(fc.constantFrom(' ', '\t', '\n', '=', '\\', 'a', 'b', 'k', 'ab', 'é', 'sample#m', '1MB', '\u00a0'), { maxLength: 40 }).map((a) => a.join(''));
  const key = fc.constantFrom('a', 'b', 'k', 'ab', 'ka', 'é', 'sample#m', 'a=b', 'a b', 'a"', '', 'zz', '1MB', 'm');

  it('gives what the map gives for every key, present or not', () => {
    fc.assert(fc.property(fc.oneof(text, plain), key, (t, k) => {
      const all = parseLogfmt(t);
      const lazy = new LogfmtFields(t);
      for (const name of [k, ...all.keys(), k]) {
        expect(lazy.get(name)).toBe(all.get(name));
        expect(lazy.has(name)).toBe(all.has(name));
      }
    }), { numRuns: 3000 });
  });

  it('iterates, counts and forEach-es as the map, after gets or before', () => {
    fc.assert(fc.property(text, key, fc.boolean(), (t, k, getFirst) => {
      const all = parseLogfmt(t);
      const lazy = new LogfmtFields(t);
      if (getFirst) lazy.get(k);
      expect([...lazy]).toEqual([...all]);
      expect(lazy.size).toBe(all.size);
      expect([...lazy.keys()]).toEqual([...all.keys()]);
      expect([...lazy.values()]).toEqual([...all.values()]);
      expect([...lazy.entries()]).toEqual([...all.entries()]);
      const seen: [string, string][] = [];
      lazy.forEach((v, name, m) => { seen.push([name, v]); expect(m).toBe(lazy); });
      expect(seen).toEqual([...all]);
      expect(lazy.get(k)).toBe(all.get(k));
    }), { numRuns: 1000 });
  });

  it('reads the sample lines as parseLogfmt does', () => {
    for (const t of [...textsOf('router.txt'), ...textsOf('runtime-metrics.txt')]) {
      const all = parseLogfmt(t);
      const lazy = new LogfmtFields(t);
      for (const name of [...all.keys(), 'sample#memory_total', 'sample#memory_quota', 'code', 'service', 'dyno', 'nope']) expect(lazy.get(name)).toBe(all.get(name));
    }
  });

  it('is linear on a long hostile line', () => {
    const t = `${'a="\\'.repeat(20000)}`;
    expect(new LogfmtFields(t).get('a')).toBe(parseLogfmt(t).get('a'));
    const plain = 'a=\\'.repeat(20000);
    expect(new LogfmtFields(plain).get('a')).toBe(parseLogfmt(plain).get('a'));
  });
});
