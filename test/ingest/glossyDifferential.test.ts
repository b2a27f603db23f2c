import { readFileSync, readdirSync } from 'node:fs';
import glossy from 'glossy';
import { describe, expect, it } from 'vitest';
import { parseSyslogHeader } from '../../src/ingest/syslogHeader.js';
import { samplePath } from '../support/samples.js';

/*
 * Every line in lines/*.txt is one HTTPS-drain message (`<PRI>1 TS host APP PROC - TEXT`, no LF).
 * glossy agrees with mallet on PRI, timestamp, HOSTNAME, APP-NAME, PROCID and MSGID (glossy
 * gives null for `-`) for all of them. Where it is wrong: it reads STRUCTURED-DATA after MSGID
 * whenever the text has a word ending in `]`, taking every word up to the last such word as SD,
 * because it cannot know HTTPS drains send none. On the samples that is 27 lines:
 *
 * | lines                      | text starts with / contains                 | glossy's message      |
 * |----------------------------|---------------------------------------------|-----------------------|
 * | app.txt 3, 6               | `Processing … [GET]`                         | `""`                  |
 * | app.txt 9, 24–29, 55       | Rails `[2024-11-14T03:12:07.420871 #12] …`   | text after the tags   |
 * | app.txt 10                 | `[r9673] log_request_id…`                    | text after the tag    |
 * | app.txt 12–23, 56, 57      | Puma `[4] Puma starting…`, `[11] - Worker…`  | text after `[N]`      |
 * | api-and-addons.txt 13, 19  | `[DATABASE] LOG: …`, `[HEROKU_POSTGRESQL_NAVY] …` | text after the tag |
 *
 * The empty messages (`… - ` with a trailing space) come out as "" from both.
 */
const glossyParse = (line: string): Record<string, unknown> => glossy.Parse.parse(line);

const allLines = readdirSync(samplePath('lines')).filter((f) => f.endsWith('.txt')).sort().flatMap((file) =>
  readFileSync(samplePath('lines', file), 'utf8').split('\n').map((line, i) => ({ where: `${file}:${i + 1}`, line })).filter((l) => l.line));

function glossyTakesSd(text: string): boolean {
  return text.split(' ').some((w) => w.endsWith(']'));
}

describe('differential against glossy on lines/*.txt', () => {
  it('covers every sample line', () => {
    expect(allLines.length).toBe(274);
  });

  it.each(allLines)('$where', ({ line }) => {
    const buf = Buffer.from(line);
    const m = parseSyslogHeader(buf, 0, buf.length, { structuredData: false });
    expect(m).toBeDefined();
    const g = glossyParse(line);
    expect(m!.pri).toBe(g.prival);
    expect(m!.hostname).toBe(g.host ?? '-');
    expect(m!.appName).toBe(g.appName ?? '-');
    expect(m!.procId).toBe(g.pid ?? '-');
    expect(m!.msgId).toBe(g.msgID ?? '-');
    expect(Date.parse(m!.timestamp)).toBe((g.time as Date).getTime());
    // mallet's text is everything after `MSGID `, byte for byte.
    expect(m!.message).toBe(line.slice(line.indexOf(' - ') + 3));
    if (glossyTakesSd(m!.message)) {
      expect(g.message).not.toBe(m!.message);
      expect(m!.message.endsWith(g.message as string)).toBe(true);
    } else {
      expect(g.message).toBe(m!.message);
    }
  });

  it('glossy is wrong exactly on the 27 lines in the table', () => {
    const wrong = allLines.filter(({ line }) => glossyParse(line).message !== line.slice(line.indexOf(' - ') + 3)).map((l) => l.where);
    expect(wrong).toHaveLength(27);
    expect(wrong.filter((w) => w.startsWith('api-and-addons.txt'))).toEqual(['api-and-addons.txt:13', 'api-and-addons.txt:19']);
  });
});
