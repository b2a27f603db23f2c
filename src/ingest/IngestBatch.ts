import type { SyslogMessage } from './SyslogMessage.js';

/** What a drain hands on: the messages of one logplex body (HTTPS) or one read (syslog). */
export interface IngestBatch {
  readonly app: string;
  /** `Logplex-Drain-Token` (HTTPS) or the syslog HOSTNAME `d.<uuid>`; '' when the sender gave none. */
  readonly drainToken: string;
  /** `Logplex-Frame-Id`, or a digest of the body when absent; unique per read for syslog. */
  readonly frameId: string;
  /** Retried HTTPS frames are skipped whole once processed; syslog frames are never retried. */
  readonly dedupe: boolean;
  readonly receivedAt: number;
  readonly messages: readonly SyslogMessage[];
  /**
   * Lines of the same read that no consumer could want (the pipeline's prefilter, `wants`): not
   * made into messages, only counted. Absent: every line read is in `messages`.
   */
  readonly passedOver?: LineCounts | undefined;
  /**
   * With lines passed over from a frame that is de-duplicated (HTTPS): for messages[i], how many
   * lines of the frame follow it, the passed-over ones included, which is the last part of its
   * event id (drainEvents): the same ids as had every line been kept, so a retry parsed under
   * other rules still counts no line twice. Absent: messages.length - 1 - i.
   */
  readonly linesAfter?: readonly number[] | undefined;
}

export interface IngestResult {
  readonly duplicate: boolean;
  readonly lines: number;
  readonly firings: number;
}

export type IngestHandler = (batch: IngestBatch) => Promise<IngestResult>;

/** Lines read but passed over (no consumer wanted them), by `mallet_lines_total`'s source label. */
export interface LineCounts {
  heroku: number;
  app: number;
  other: number;
}

export function newLineCounts(): LineCounts {
  return { heroku: 0, app: 0, other: 0 };
}

/** Lines of a batch in all: its messages and the lines passed over. */
export function linesOf(batch: IngestBatch): number {
  const p = batch.passedOver;
  return batch.messages.length + (p === undefined ? 0 : p.heroku + p.app + p.other);
}
