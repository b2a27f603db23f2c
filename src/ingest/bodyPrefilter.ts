import type { DrainEvent } from './DrainEvent.js';
import { newLineCounts, type LineCounts } from './IngestBatch.js';
import { LINE_API, LINE_APP, LINE_PLATFORM, LINE_ROUTER } from './lineClass.js';
import { HTTPS_SCAN, type ParsedBody, type ScanOptions } from './logplexFrames.js';
import { BufferedSyslogMessage, LiteralScan } from './SyslogMessage.js';

/**
 * The HTTPS drain's prefilter (the pipeline's `wants`), applied while a body is parsed: a line no
 * consumer could read is shown to `wants` as a moving view and never made a message, only counted
 * by kind. One per route, reused body after body: a parse runs to its end without yielding, so
 * the view, the literal scan and the scan options are never shared by two bodies at once.
 *
 * The lines kept still get the event ids they would get had every line been kept (a retry must
 * count none of them twice, and its firings must be the same): each kept line's place among all
 * the lines of the body is recorded, as `linesAfter` (drainEvents).
 */
export class BodyPrefilter {
  readonly view = BufferedSyslogMessage.view();
  readonly scan = new LiteralScan();
  /** parseLogplexBody's scan options with this as the filter, made once. */
  readonly options: ScanOptions = { ...HTTPS_SCAN, filter: this };
  #lines = 0;
  #positions: number[] = [];
  #passedOver: LineCounts | undefined = undefined;

  constructor(private readonly wants: (line: DrainEvent) => boolean) {}

  /** Before a body: nothing read yet. */
  start(): void {
    this.#lines = 0;
    this.#positions = [];
    this.#passedOver = undefined;
    // Its positions are of the last body's bytes.
    this.scan.reset();
  }

  /** ScanOptions.filter's: called once per line that parses, in order. */
  keep(line: BufferedSyslogMessage): boolean {
    const at = this.#lines++;
    if (this.wants(line)) {
      this.#positions.push(at);
      return true;
    }
    const counts = (this.#passedOver ??= newLineCounts());
    // mallet_lines_total's source label, as Pipeline.countLines tells it from APP-NAME.
    const c = line.lineClass;
    if ((c & (LINE_ROUTER | LINE_PLATFORM)) !== 0) counts.heroku++;
    else if ((c & (LINE_APP | LINE_API)) !== 0) counts.app++;
    else counts.other++;
    return false;
  }

  /**
   * The body's outcome once it is parsed, into `out`: the lines passed over (left undefined: none)
   * and, per kept line, how many lines of the body follow it. Both are the body's own (not reused).
   */
  finish(out: ParsedBody): void {
    const linesAfter = this.#positions;
    const last = this.#lines - 1;
    for (let i = 0; i < linesAfter.length; i++) linesAfter[i] = last - linesAfter[i]!;
    out.linesAfter = linesAfter;
    if (this.#passedOver !== undefined) out.passedOver = this.#passedOver;
  }
}
