/**
 * The serve bin/mallet.js started again with its node flags has an IPC channel to the process
 * that started it: that process gone (killed), the serve stops rather than run on unwatched.
 * The channel does not hold the event loop open.
 */
export function stopWithStarter(stop: (why: string) => void): void {
  const channel = (process as { channel?: { unref(): void } }).channel;
  if (channel === undefined) return;
  channel.unref();
  process.once('disconnect', () => stop('the process that started mallet is gone'));
}
