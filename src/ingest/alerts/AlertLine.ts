import type { SyslogMessage } from '../SyslogMessage.js';
import { MAX_MESSAGE_BYTES } from '../SyslogMessage.js';
import { parseSyslogHeader } from '../syslogHeader.js';
import { truncateUtf8 } from '../../truncateUtf8.js';

/**
 * Alert webhooks carry log lines as text in whatever form the log service stored them. They are
 * turned into the same SyslogMessage the drains produce, so the rules see one shape; a line whose
 * origin cannot be read gets source `unknown`, which no `source: heroku` rule matches.
 */
export interface AlertLine {
  readonly source: string;
  readonly process: string;
  readonly message: string;
  /** Absent or empty: the time it arrived. */
  readonly timestamp?: string | undefined;
}

const HEROKU_LOGS = /^(\S+) ([a-z][a-z0-9-]*)\[([^\]\s]{1,128})\]: ?(.*)$/s;

export function alertMessage(line: AlertLine): SyslogMessage {
  const message = truncateUtf8(line.message.replace(/\n$/, ''), MAX_MESSAGE_BYTES);
  return {
    pri: line.source === 'app' ? 190 : 134,
    timestamp: line.timestamp || new Date().toISOString().replace('Z', '+00:00'),
    hostname: 'host',
    // The RFC 5424 bounds of the drains (APP-NAME 48, PROCID 128): these come from a payload.
    appName: line.source.length <= 48 ? line.source : 'unknown',
    procId: line.process.length <= 128 ? line.process : 'unknown',
    msgId: '-',
    structuredData: undefined,
    message,
  };
}

/**
 * One stored line: a syslog frame (`[LEN ]<PRI>1 TS HOST APP PROC - [- ]TEXT`) or `heroku logs`
 * output (`TS source[proc]: text`); anything else is kept as text of unknown origin.
 */
export function messageFromText(text: string, timestamp?: string): SyslogMessage {
  const raw = text.replace(/^\d{1,9} (?=<)/, '');
  if (raw.startsWith('<')) {
    const buf = Buffer.from(raw, 'utf8');
    // A syslog-drain line has `- -` (MSGID, SD); an HTTPS-drain line only `-`.
    const parsed = parseSyslogHeader(buf, 0, buf.length, { structuredData: /^<\d+>1 \S+ d\./.test(raw) });
    if (parsed) return parsed;
  }
  const m = HEROKU_LOGS.exec(raw);
  if (m) return alertMessage({ timestamp: m[1]!, source: m[2]!, process: m[3]!, message: m[4]! });
  return alertMessage({ source: 'unknown', process: 'unknown', message: raw, timestamp });
}
