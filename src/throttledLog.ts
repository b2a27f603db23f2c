import type { Logger } from 'pino';

/**
 * Log lines whose rate an attacker (or a broken app) controls, kept to a few per reason and app:
 * one body of 26 000 bad lines must not write 26 000 warnings. Within a window of `windowMs`, the
 * first `linesPerWindow` lines of a (reason, app) pair are written; the rest are counted, and the
 * count is written when the window ends (a summary line) or, if the next allowed line comes
 * first, as its `suppressed` field. Nothing is lost from view: every suppressed line is in a count.
 *
 * Memory is bounded: at most `maxKeys` pairs are tracked; beyond that, further apps share one
 * pair per reason (app `*`), so a stream of new app names cannot grow the map.
 */
export interface ThrottledLogOptions {
  readonly windowMs?: number;
  readonly linesPerWindow?: number;
  readonly maxKeys?: number;
  /** Injected so tests step time; the summary timer only decides when to write, not what. */
  readonly now?: () => number;
}

type Level = 'warn' | 'info' | 'error';

interface Pair {
  readonly reason: string;
  readonly app: string;
  windowStart: number;
  written: number;
  suppressed: number;
  level: Level;
  msg: string;
  timer: NodeJS.Timeout | undefined;
}

const OTHER_APPS = '*';
const APP_CHARS = 64;

export class ThrottledLog {
  readonly #logger: Logger;
  readonly #windowMs: number;
  readonly #perWindow: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #pairs = new Map<string, Pair>();

  constructor(logger: Logger, opts: ThrottledLogOptions = {}) {
    this.#logger = logger;
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#perWindow = opts.linesPerWindow ?? 5;
    this.#maxKeys = opts.maxKeys ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  warn(reason: string, app: string, fields: Record<string, unknown>, msg: string): void {
    this.#log('warn', reason, app, fields, msg);
  }

  info(reason: string, app: string, fields: Record<string, unknown>, msg: string): void {
    this.#log('info', reason, app, fields, msg);
  }

  error(reason: string, app: string, fields: Record<string, unknown>, msg: string): void {
    this.#log('error', reason, app, fields, msg);
  }

  /** Writes every pending count now (on shutdown, and in tests). */
  flush(): void {
    for (const pair of [...this.#pairs.values()]) this.#end(pair);
  }

  #log(level: Level, reason: string, appName: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.#now();
    const pair = this.#pair(reason, appName.slice(0, APP_CHARS), now);
    let carried = 0;
    if (now - pair.windowStart >= this.#windowMs) {
      // The window is over and its summary not written yet (timers run late under load): the
      // count travels with this line instead of a line of its own.
      carried = pair.suppressed;
      this.#clearTimer(pair);
      pair.windowStart = now;
      pair.written = 0;
      pair.suppressed = 0;
    }
    if (pair.written < this.#perWindow) {
      pair.written++;
      const extra = carried > 0 ? { suppressed: carried } : {};
      this.#logger[level]({ ...fields, reason, app: pair.app, ...extra }, msg);
      return;
    }
    pair.suppressed++;
    pair.level = level;
    pair.msg = msg;
    if (pair.timer === undefined) {
      const left = Math.max(0, pair.windowStart + this.#windowMs - now);
      pair.timer = setTimeout(() => this.#end(pair), left);
      pair.timer.unref();
    }
  }

  #pair(reason: string, appName: string, now: number): Pair {
    let key = `${reason}\u0000${appName}`;
    let pair = this.#pairs.get(key);
    if (pair) return pair;
    if (this.#pairs.size >= this.#maxKeys) this.#sweep(now);
    let app = appName;
    if (this.#pairs.size >= this.#maxKeys) {
      app = OTHER_APPS;
      key = `${reason}\u0000${OTHER_APPS}`;
      pair = this.#pairs.get(key);
      if (pair) return pair;
    }
    pair = { reason, app, windowStart: now, written: 0, suppressed: 0, level: 'warn', msg: '', timer: undefined };
    this.#pairs.set(key, pair);
    return pair;
  }

  /** Pairs whose window is over and that hold no count are forgotten. */
  #sweep(now: number): void {
    for (const [key, pair] of this.#pairs) {
      if (pair.suppressed === 0 && now - pair.windowStart >= this.#windowMs) this.#pairs.delete(key);
    }
  }

  #end(pair: Pair): void {
    this.#clearTimer(pair);
    this.#pairs.delete(`${pair.reason}\u0000${pair.app}`);
    if (pair.suppressed > 0) {
      this.#logger[pair.level]({ reason: pair.reason, app: pair.app, suppressed: pair.suppressed, windowMs: this.#windowMs }, `${pair.suppressed} more like this suppressed: ${pair.msg}`);
    }
  }

  #clearTimer(pair: Pair): void {
    if (pair.timer !== undefined) clearTimeout(pair.timer);
    pair.timer = undefined;
  }
}
