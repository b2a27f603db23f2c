import type { DrainEvent } from './DrainEvent.js';
import type { IngestBatch } from './IngestBatch.js';
import { lineClassOf } from './lineClass.js';
import { BufferedSyslogMessage, LiteralScan, type SyslogMessage } from './SyslogMessage.js';

/** A parsed message seen as a DrainEvent; the id and message are only built when read. */
class MessageEvent implements DrainEvent {
  /** `linesAfter`: how many lines of the frame follow this one (IngestBatch.linesAfter). */
  constructor(private readonly batch: IngestBatch, protected readonly msg: SyslogMessage, private readonly linesAfter: number) {}
  get app() { return this.batch.app; }
  /**
   * Counted from the end of the frame: a logplex retry may gain an L10 line in front (it recomputes
   * the overflow notice per send, ../shared/docs/heroku-drain-protocol.md §1.4), which would shift
   * every index counted from the start and count each line of the retry again. Lines passed over
   * are counted too (IngestBatch.linesAfter).
   */
  get id() { return `${this.batch.drainToken}:${this.batch.frameId}:${this.linesAfter}`; }
  get receivedAt() { return this.batch.receivedAt; }
  get timestamp() { return this.msg.timestamp; }
  get source() { return this.msg.appName; }
  get process() { return this.msg.procId; }
  get lineClass() { return this.msg.lineClass ?? lineClassOf(this.msg.appName, this.msg.procId); }
  get message() { return this.msg.message; }
}

type ByteTests = Required<Pick<SyslogMessage, 'messageIncludes' | 'messageStartsWith'>>;

/**
 * The same over a message that can test literals on its bytes, so the rules reject most lines
 * without decoding them. A subclass rather than methods that may be absent: the rules check for
 * the methods, and the events of string-only producers simply lack them.
 */
class ByteMessageEvent extends MessageEvent {
  constructor(batch: IngestBatch, protected override readonly msg: SyslogMessage & ByteTests, linesAfter: number, private readonly scan: LiteralScan) {
    super(batch, msg, linesAfter);
  }
  messageIncludes(needle: Buffer): boolean { return this.msg.messageIncludes(needle, this.scan); }
  messageStartsWith(needle: Buffer, at?: number): boolean { return this.msg.messageStartsWith(needle, at); }
}

/**
 * The batch's messages as the rules see them (what every stage after ingest reads). They share one
 * LiteralScan: a batch's bytes no longer change, and its lines are matched in order. A message
 * read from bytes is its own event (one object per line, not two); one already bound to another
 * batch is wrapped like any other.
 */
export function drainEvents(batch: IngestBatch): DrainEvent[] {
  const scan = new LiteralScan();
  const { messages, linesAfter } = batch;
  if (linesAfter !== undefined && linesAfter.length !== messages.length) throw new Error(`linesAfter has ${linesAfter.length} entries for ${messages.length} messages`);
  const last = messages.length - 1;
  const events: DrainEvent[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const after = linesAfter === undefined ? last - i : linesAfter[i]!;
    if (m instanceof BufferedSyslogMessage && m.bindEvent(batch, after, scan)) events[i] = m;
    else events[i] = hasByteTests(m) ? new ByteMessageEvent(batch, m, after, scan) : new MessageEvent(batch, m, after);
  }
  return events;
}

function hasByteTests(m: SyslogMessage): m is SyslogMessage & ByteTests {
  return m.messageIncludes !== undefined && m.messageStartsWith !== undefined;
}
