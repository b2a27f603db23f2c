import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { IngestBatch, IngestResult } from '../ingest/IngestBatch.js';
import { LiteralScan, type SyslogMessage } from '../ingest/SyslogMessage.js';
import type { RedisKeys } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { FiringSink } from '../rules/Firing.js';
import type { Judgement } from '../rules/engine.js';
import { RecentFrames } from './recentFrames.js';

/**
 * Joins the stages: ingest batch → rules → action queue, with the frame-level de-duplication
 * of logplex retries (SPEC §3: a retried frame makes no second firing and no second count). The
 * frame is marked done last, so a delivery that failed half-way is processed again in full; that
 * is safe because counting (event ids) and enqueueing (job ids) are idempotent.
 */
export interface Evaluator {
  judge(events: readonly DrainEvent[]): Promise<Judgement>;
}

export class Pipeline {
  readonly #frames: RecentFrames;

  constructor(private readonly deps: {
    redis: Redis;
    keys: RedisKeys;
    engine: Evaluator;
    sink: FiringSink;
    metrics: Metrics;
    logger: Logger;
  }) {
    this.#frames = new RecentFrames(deps.redis, deps.keys);
  }

  readonly ingest = async (batch: IngestBatch): Promise<IngestResult> => {
    const { engine, sink } = this.deps;
    const frames = this.#frames;
    // Per app as well as per drain token: an alert webhook has no token of its own, and the same
    // alert body sent for two apps is two deliveries.
    const { app, drainToken, frameId, dedupe } = batch;
    // A delivery already done is skipped whole (SPEC §3). Judging it again would be idempotent only
    // while the threshold records of its lines live (window + cooldown); the
    // drain's recent frames hold it 15 minutes and for its drain's next 126 frames, while logplex
    // retries within a minute and before it sends the drain's next frame (recentFrames.ts).
    if (dedupe && (await frames.done(app, drainToken, frameId))) return { duplicate: true, lines: 0, firings: 0 };
    const events = drainEvents(batch);
    // A delivery that failed half-way, or two in flight at once, is judged again, which changes
    // nothing: each line is counted once by its event id, a firing already decided is returned as
    // the same firing, and its job id is the firing's. So the frame is marked done only once its
    // firings are stored, by the command that also tells whether this delivery came first.
    const { firings, count } = await engine.judge(events);
    if (firings.length > 0) await sink.submit(firings);
    if (dedupe && !(await frames.markDone(app, drainToken, frameId, batch.receivedAt))) return { duplicate: true, lines: 0, firings: 0 };
    // Counted once per delivery that got this far first; a retry re-judges but is not re-counted.
    count();
    this.countLines(batch);
    return { duplicate: false, lines: events.length, firings: firings.length };
  };

  private countLines(batch: IngestBatch): void {
    // Label values come from the lines: kept to three, so no payload can make new series.
    let heroku = 0;
    let app = 0;
    for (const m of batch.messages) {
      const source = m.appName;
      if (source === 'heroku') heroku++;
      else if (source === 'app') app++;
    }
    const other = batch.messages.length - heroku - app;
    const { linesTotal } = this.deps.metrics;
    if (heroku) linesTotal.inc({ app: batch.app, source: 'heroku' }, heroku);
    if (app) linesTotal.inc({ app: batch.app, source: 'app' }, app);
    if (other) linesTotal.inc({ app: batch.app, source: 'other' }, other);
  }
}

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
  messageStartsWith(needle: Buffer): boolean { return this.msg.messageStartsWith(needle); }
}

/**
 * The batch's messages as the rules see them (exported for the rules bench). They share one
 * LiteralScan: a batch's bytes no longer change, and its lines are matched in order.
 */
export function drainEvents(batch: IngestBatch): DrainEvent[] {
  const scan = new LiteralScan();
  const { messages } = batch;
  const events: DrainEvent[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    events[i] = hasByteTests(m) ? new ByteMessageEvent(batch, m, i, scan) : new MessageEvent(batch, m, i);
  }
  return events;
}

function hasByteTests(m: SyslogMessage): m is SyslogMessage & ByteTests {
  return m.messageIncludes !== undefined && m.messageStartsWith !== undefined;
}
