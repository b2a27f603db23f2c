/**
 * One log line as it leaves ingest, whichever drain it came through (HTTPS, syslog, alert
 * webhook). Everything downstream (rules, actions) sees only this shape.
 *
 * `message` may be decoded lazily by the producer (a getter over the raw bytes): read it only
 * when a rule needs it.
 */
export interface DrainEvent {
  /** Heroku app name: from the drain URL (HTTPS) or the drain-token map (syslog). */
  readonly app: string;
  /**
   * Stable identity of this line for idempotency across logplex retries and replicas:
   * `${drainToken}:${frameId}:${index}` for drains. Never shown to a Redis key unhashed.
   */
  readonly id: string;
  /** Server clock when the body arrived (ms since epoch). Live rules count in this time. */
  readonly receivedAt: number;
  /** RFC 3339 timestamp exactly as sent (0–6 fraction digits). */
  readonly timestamp: string;
  /** APP-NAME: `heroku` for the platform, `app` for the app's own output, rarely others. */
  readonly source: string;
  /** PROCID: `web.1`, `router`, `worker.3`, `api`, `heroku-postgres`, ... */
  readonly process: string;
  /**
   * Who wrote the line (lineClass.ts: one bit of LINE_APP, LINE_API, LINE_ROUTER, LINE_PLATFORM,
   * LINE_OTHER), always lineClassOf(source, process); a producer may omit it, then readers
   * compute it.
   */
  readonly lineClass?: number;
  /** Message text without the one trailing LF; UTF-8 decoded with replacement, BOM kept. */
  readonly message: string;
  /**
   * Optional byte-level tests over the same text `message` decodes (same LF and 64 KiB rules):
   * `message.includes(literal)` / `message.startsWith(literal)` with `needle` = the literal's
   * UTF-8 bytes. They exist so the rules' literal prefilters can reject most lines without
   * decoding them; a producer over strings may omit them, and callers fall back to `message`.
   * Only equal to the string tests for a well-formed literal without U+FFFD (which a
   * replaced bad byte would also produce).
   */
  messageIncludes?(needle: Buffer): boolean;
  /** `at`: a byte offset into the text (only for needles after an ASCII prefix already matched). */
  messageStartsWith?(needle: Buffer, at?: number): boolean;
  /**
   * `read(buf, start, end, a, b)` over the bytes `message` decodes (buf[start, end), same LF and
   * 64 KiB rules), without making the text: for readers of ASCII fields, which find them at the
   * same places in the bytes as in the text (UTF-8 makes no ASCII byte of a non-ASCII one, nor
   * the replacement character of an ASCII one). `a` and `b` are passed through, so that the
   * reader can be a function made once rather than a closure per line.
   */
  readMessageBytes?<A, B, R>(read: (buf: Buffer, start: number, end: number, a: A, b: B) => R, a: A, b: B): R;
  /** timestampMs(timestamp) (src/ingest/timestampMs.ts), when the producer can tell it without making the text. */
  readonly timeMs?: number;
}
