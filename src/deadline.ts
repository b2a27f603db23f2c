/**
 * `p`'s value, or 'timeout' when it has not settled within `ms` (its rejection passes through).
 * The timer is cleared either way, so a settled wait leaves nothing behind.
 */
export async function withDeadline<T>(p: PromiseLike<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}
