import type { DrainEvent } from './DrainEvent.js';
import type { IngestBatch } from './IngestBatch.js';
import { lineClassOf } from './lineClass.js';
import { BufferedSyslogMessage, LiteralScan, type SyslogMessage } from './SyslogMessage.js';

/** A parsed message seen as a DrainEvent; the id and message are only built when read. */
class MessageEvent implements DrainEvent {
  constructor(private readonly batch: IngestBatch, protected readonly msg: SyslogMessage, private readonly index: number) {}
  get app() { return this.batch.app; }
  /**
   * Counted from the end of the frame: a logplex retry may gain an L10 line in front (it recomputes
   * the overflow notice per send, ../shared/docs/heroku-drain-protocol.md §1.4), which would shift
   * every index counted from the start and count each line of the retry again.
   */
  get id() { return `${this.batch.drainToken}:${this.batch.frameId}:${this.batch.messages.length - 1 - this.index}`; }
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
  constructor(batch: IngestBatch, protected override readonly msg: SyslogMessage & ByteTests, index: number, private readonly scan: LiteralScan) {
    super(batch, msg, index);
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
  const { messages } = batch;
  const events: DrainEvent[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m instanceof BufferedSyslogMessage && m.bindEvent(batch, i, scan)) events[i] = m;
    else events[i] = hasByteTests(m) ? new ByteMessageEvent(batch, m, i, scan) : new MessageEvent(batch, m, i);
  }
  return events;
}

function hasByteTests(m: SyslogMessage): m is SyslogMessage & ByteTests {
  return m.messageIncludes !== undefined && m.messageStartsWith !== undefined;
}
