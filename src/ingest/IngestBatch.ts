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
}

export interface IngestResult {
  readonly duplicate: boolean;
  readonly lines: number;
  readonly firings: number;
}

export type IngestHandler = (batch: IngestBatch) => Promise<IngestResult>;
