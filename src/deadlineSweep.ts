/**
 * withDeadline (deadline.ts) for many waits of nearly the same length, with one timer for all of
 * them: the drain route waits once per body, each wait ending at its request's start plus the
 * store deadline. A timer per wait is a Timeout object and, since each wait's length differs by
 * a fraction of a millisecond, a timer list of its own inserted into and removed from Node's
 * timer queue; here a wait is a node of a list kept in deadline order, removed when its promise
 * settles, and one timer is armed for the earliest deadline.
 *
 * Waits are added in nearly deadline order (requests start in order and are parsed soon after),
 * so a new one is linked from the end, passing the few that end later. A wait whose deadline
 * comes before the list's first re-arms the timer. When the last wait settles the timer is
 * cleared: an idle sweep leaves nothing that keeps the process alive.
 */
interface Wait {
  readonly at: number;
  readonly expire: () => void;
  prev: Wait | undefined;
  next: Wait | undefined;
  /** Unlinked: settled, or expired. */
  gone: boolean;
}

export class DeadlineSweep {
  #first: Wait | undefined;
  #last: Wait | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for. */
  #armedAt = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `p`'s value, or 'timeout' when it has not settled within `ms` (its rejection passes through). */
  wait<T>(p: PromiseLike<T>, ms: number): Promise<T | 'timeout'> {
    return new Promise<T | 'timeout'>((resolve, reject) => {
      const w = this.#add(this.now() + (Number.isNaN(ms) ? 0 : Math.max(ms, 0)), () => resolve('timeout'));
      p.then(
        (value) => { this.#remove(w); resolve(value); },
        (err: unknown) => { this.#remove(w); reject(err); },
      );
    });
  }

  /** Waits not yet settled nor expired (for tests). */
  get size(): number {
    let n = 0;
    for (let w = this.#first; w !== undefined; w = w.next) n++;
    return n;
  }

  #add(at: number, expire: () => void): Wait {
    const w: Wait = { at, expire, prev: undefined, next: undefined, gone: false };
    let after = this.#last;
    while (after !== undefined && after.at > at) after = after.prev;
    w.prev = after;
    w.next = after === undefined ? this.#first : after.next;
    if (w.next === undefined) this.#last = w;
    else w.next.prev = w;
    if (after === undefined) this.#first = w;
    else after.next = w;
    if (at < this.#armedAt) this.#arm(at);
    return w;
  }

  #remove(w: Wait): void {
    if (w.gone) return;
    w.gone = true;
    if (w.prev === undefined) this.#first = w.next;
    else w.prev.next = w.next;
    if (w.next === undefined) this.#last = w.prev;
    else w.next.prev = w.prev;
    if (this.#first === undefined) this.#disarm();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#sweep, Math.max(0, at - this.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    // A timer may fire up to a millisecond before its time by this clock (Node's own is whole
    // milliseconds): what is due within one is due now.
    const due = this.now() + 1;
    let w = this.#first;
    while (w !== undefined && w.at <= due) {
      const next = w.next;
      this.#remove(w);
      w.expire();
      w = next;
    }
    if (this.#first !== undefined && this.#timer === undefined) this.#arm(this.#first.at);
  };
}
