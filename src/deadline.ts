/**
 * `p`'s value, or 'timeout' when it has not settled within `ms` (its rejection passes through).
 * The timer is cleared either way, so a settled wait leaves nothing behind.
 *
 * One promise and one timer per call, not an async function over a Promise.race of `p` and a
 * timer's promise (three more promises and their reactions): every drain body waits here once.
 */
export function withDeadline<T>(p: PromiseLike<T>, ms: number): Promise<T | 'timeout'> {
  return new Promise<T | 'timeout'>((resolve, reject) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    p.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (err: unknown) => { clearTimeout(timer); reject(err); },
    );
  });
}
