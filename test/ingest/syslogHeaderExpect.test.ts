import { describe, expect, it } from 'vitest';
import { parseSyslogHeader } from '../../src/ingest/syslogHeader.js';
import { BufferedSyslogMessage } from '../../src/ingest/SyslogMessage.js';

const TOKEN = 'd.8c1e5c1a-1d2e-4a47-9d6f-0b3a4c5d6e7f';
const line = (host: string) => Buffer.from(`<134>1 2024-11-14T00:00:00.123+00:00 ${host} heroku router - - at=info\n`, 'latin1');
const parse = (view: BufferedSyslogMessage, host: string) => {
  const buf = line(host);
  return parseSyslogHeader(buf, 0, buf.length, { structuredData: true }, view);
};

// The syslog listener's token check is made by the parser as it reads HOSTNAME (one walk, not two):
// a wrong answer would count a line under another drain token, or skip a field check.
describe('parseSyslogHeader with an expected HOSTNAME', () => {
  it('says whether HOSTNAME is exactly the expected bytes, and reads the same fields either way', () => {
    const view = BufferedSyslogMessage.view();
    view.expectHostname(Buffer.from(TOKEN, 'latin1'));
    const near = [TOKEN, `${TOKEN}0`, TOKEN.slice(0, -1), `${TOKEN.slice(0, -1)}0`, `x${TOKEN.slice(1)}`, 'host'];
    for (const host of near) {
      const m = parse(view, host)!;
      expect(m, host).toBeDefined();
      expect(m.hostnameIsExpected, host).toBe(host === TOKEN);
      expect(m.hostname, host).toBe(host);
      expect([m.appName, m.procId, m.message], host).toEqual(['heroku', 'router', 'at=info']);
    }
    // Without an expectation nothing is ever "expected".
    const plain = BufferedSyslogMessage.view();
    expect(parse(plain, TOKEN)!.hostnameIsExpected).toBe(false);
  });

  it('still refuses a HOSTNAME that starts with the expected bytes and then holds a control byte', () => {
    const view = BufferedSyslogMessage.view();
    view.expectHostname(Buffer.from(TOKEN, 'latin1'));
    expect(parse(view, `${TOKEN}\x01`)).toBeUndefined();
    expect(parse(view, `${TOKEN}\x01x`)).toBeUndefined();
  });
});
